//! One shard rebuilt as a linear combination of `k` others, without decoding the stripe.
//!
//! Every shard of a Reed–Solomon stripe is a row of the code's `(k + m) × k` encoding
//! matrix `E` times the `k` data shards (the data rows are the identity). Given `k` present
//! shards with rows `S` (invertible for an MDS code), the data is `S⁻¹ · present`, so shard
//! `t` is `(E[t] · S⁻¹) · present`: `k` coefficients, then one multiply-accumulate pass over
//! each input. Repair rebuilds the one shard a datanode lost this way: no concatenated
//! stripe, no re-encoding of every parity shard to keep one.
//!
//! The backend does not expose its matrix; its parity rows are read back by encoding the
//! unit vectors (one byte per shard), which is exact because encoding is linear.

use reed_solomon_erasure::galois_8::{self, ReedSolomon};

use crate::ErasureError;

/// The encoding matrix of `rs`: `k + m` rows of `k` coefficients (the identity, then the
/// parity rows, read back with one encode per data shard: column `j` is the parity of the
/// unit vector `e_j`).
fn encoding_matrix(rs: &ReedSolomon, k: usize) -> Result<Vec<Vec<u8>>, ErasureError> {
    let m = rs.parity_shard_count();
    let mut rows: Vec<Vec<u8>> = (0..k + m)
        .map(|r| (0..k).map(|j| u8::from(r == j)).collect())
        .collect();
    let columns = (0..k)
        .map(|j| {
            let inputs: Vec<[u8; 1]> = (0..k).map(|i| [u8::from(i == j)]).collect();
            let mut parity = vec![[0u8; 1]; m];
            rs.encode_sep(&inputs, &mut parity)
                .map_err(|e| ErasureError::Backend(format!("reading the encoding matrix: {e}")))?;
            Ok(parity)
        })
        .collect::<Result<Vec<_>, ErasureError>>()?;
    for (p, row) in rows[k..].iter_mut().enumerate() {
        for (coeff, column) in row.iter_mut().zip(&columns) {
            *coeff = column[p][0];
        }
    }
    Ok(rows)
}

/// Inverts the `k × k` matrix `a` (rows) over GF(2⁸) by Gauss–Jordan elimination.
fn invert(mut a: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, ErasureError> {
    let k = a.len();
    let mut inv: Vec<Vec<u8>> = (0..k)
        .map(|i| (0..k).map(|j| u8::from(i == j)).collect())
        .collect();
    for col in 0..k {
        let pivot = (col..k)
            .find(|&r| a[r][col] != 0)
            .ok_or_else(|| ErasureError::Backend("the chosen shards' rows are singular".into()))?;
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for j in 0..k {
            a[col][j] = galois_8::div(a[col][j], p);
            inv[col][j] = galois_8::div(inv[col][j], p);
        }
        for r in 0..k {
            let f = a[r][col];
            if r == col || f == 0 {
                continue;
            }
            for j in 0..k {
                a[r][j] = galois_8::add(a[r][j], galois_8::mul(f, a[col][j]));
                inv[r][j] = galois_8::add(inv[r][j], galois_8::mul(f, inv[col][j]));
            }
        }
    }
    Ok(inv)
}

/// The coefficients that make shard `target` out of the shards `from` (`k` distinct
/// indices other than `target`): `E[target] · S⁻¹`.
pub(crate) fn coefficients(
    rs: &ReedSolomon,
    k: usize,
    target: usize,
    from: &[usize],
) -> Result<Vec<u8>, ErasureError> {
    let matrix = encoding_matrix(rs, k)?;
    let row = |i: usize| {
        matrix
            .get(i)
            .cloned()
            .ok_or(ErasureError::ShardIndexOutOfRange {
                index: i,
                total: matrix.len(),
            })
    };
    let inv = invert(from.iter().map(|&i| row(i)).collect::<Result<_, _>>()?)?;
    let want = row(target)?;
    Ok((0..k)
        .map(|j| {
            (0..k).fold(0u8, |acc, i| {
                galois_8::add(acc, galois_8::mul(want[i], inv[i][j]))
            })
        })
        .collect())
}

/// `out = Σ coeffs[j] · inputs[j]` over GF(2⁸) (all the same length as `out`).
pub(crate) fn combine(coeffs: &[u8], inputs: &[&[u8]], out: &mut [u8]) {
    let mut first = true;
    for (&c, input) in coeffs.iter().zip(inputs) {
        match (c, first) {
            (0, _) => continue,
            (1, true) => out.copy_from_slice(input),
            (c, true) => galois_8::mul_slice(c, input, out),
            (c, false) => galois_8::mul_slice_xor(c, input, out),
        }
        first = false;
    }
    if first {
        out.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_times_its_inverse_is_the_identity() {
        let rs = ReedSolomon::new(4, 2).unwrap();
        let matrix = encoding_matrix(&rs, 4).unwrap();
        let rows: Vec<Vec<u8>> = [1, 3, 4, 5].iter().map(|&i| matrix[i].clone()).collect();
        let inv = invert(rows.clone()).unwrap();
        for (i, row) in rows.iter().enumerate() {
            for j in 0..4 {
                let v = row.iter().zip(&inv).fold(0u8, |acc, (&r, inv_row)| {
                    galois_8::add(acc, galois_8::mul(r, inv_row[j]))
                });
                assert_eq!(v, u8::from(i == j), "({i}, {j})");
            }
        }
    }

    #[test]
    fn a_singular_choice_is_an_error_not_a_panic() {
        let rs = ReedSolomon::new(3, 2).unwrap();
        assert!(coefficients(&rs, 3, 4, &[0, 0, 1]).is_err());
    }
}
