//! Erasure coding end to end: the default server spreads each stripe over six datanodes
//! (4+2); losing any two datanodes' data loses no object, losing three is a clear 503.

use crate::common::*;

fn wipe_datanode(server: &Server, i: u32) {
    let dir = server.data.join("datanodes").join(format!("dn{i}"));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_survive_losing_any_two_datanodes() {
    let mut server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("ecb").send().await.unwrap();
    let objects: Vec<(String, Vec<u8>)> = [100_000usize, 4 << 20, (9 << 20) + 77]
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("obj{i}"), random_bytes(n, 40 + i as u64)))
        .collect();
    for (k, v) in &objects {
        put_bytes(&s3, "ecb", k, v).await;
    }
    // Every datanode holds shards: data really is spread.
    for i in 0..6 {
        let dir = server.data.join("datanodes").join(format!("dn{i}"));
        let bytes: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(bytes > 100_000, "datanode {i} holds only {bytes} bytes");
    }

    for lost in [[0u32, 1], [4, 5]] {
        server.kill();
        for i in lost {
            wipe_datanode(&server, i);
        }
        server.restart();
        let s3 = client(&server);
        for (k, v) in &objects {
            let got = s3.get_object().bucket("ecb").key(k).send().await.unwrap();
            let body = got.body.collect().await.unwrap().into_bytes();
            assert!(
                body.as_ref() == v.as_slice(),
                "{k} wrong after losing {lost:?}"
            );
            let got = s3
                .get_object()
                .bucket("ecb")
                .key(k)
                .range("bytes=1000-99999")
                .send()
                .await
                .unwrap();
            let body = got.body.collect().await.unwrap().into_bytes();
            assert!(body.as_ref() == &v[1000..100_000]);
        }
        // Restore nothing: the next round loses two more, so write fresh copies first.
        for (k, v) in &objects {
            put_bytes(&s3, "ecb", k, v).await;
        }
    }

    // Three datanodes lost exceeds the parity: a 503, never wrong bytes.
    server.kill();
    for i in [1, 2, 3] {
        wipe_datanode(&server, i);
    }
    server.restart();
    let s3 = client(&server);
    let got = s3.get_object().bucket("ecb").key("obj0").send().await;
    match got {
        Err(e) => assert_eq!(code_of(&e).as_deref(), Some("ServiceUnavailable")),
        Ok(out) => assert!(
            out.body.collect().await.is_err(),
            "served bytes it cannot have"
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn data_layout_is_saved_and_reused() {
    let mut server = Server::start_with(&["--datanodes", "3", "--ec", "2+1"]);
    let s3 = client(&server);
    s3.create_bucket().bucket("layout").send().await.unwrap();
    let data = random_bytes(5 << 20, 9);
    put_bytes(&s3, "layout", "k", &data).await;
    // A restart without flags reuses 3 datanodes and 2+1, not the 6 / 4+2 defaults.
    server.restart_with(&[]);
    assert!(!server.data.join("datanodes").join("dn3").exists());
    let s3 = client(&server);
    assert!(get_bytes(&s3, "layout", "k").await == data);

    // Removing datanodes, or a scheme wider than the cluster, is refused at startup.
    server.kill();
    for args in [&["--datanodes", "2"][..], &["--ec", "3+1"][..]] {
        let out = std::process::Command::new(cairn_bin())
            .arg("server")
            .arg("--data")
            .arg(&server.data)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(args)
            .env("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY)
            .env("CAIRN_ROOT_SECRET_KEY", SECRET_KEY)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
    }
    // Growing the cluster and changing the scheme applies to new writes; old objects still read.
    server.restart_with(&["--datanodes", "6", "--ec", "4+2"]);
    let s3 = client(&server);
    assert!(get_bytes(&s3, "layout", "k").await == data);
    put_bytes(&s3, "layout", "new", &data).await;
    assert!(get_bytes(&s3, "layout", "new").await == data);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_half_of_two_gib_frees_half_the_disk() {
    // 64 MiB segments and a compaction pass every second, so that the test sees space
    // come back quickly; 64 objects of 32 MiB = 2 GiB of data (3 GiB on disk with 4+2).
    const N: u64 = 64;
    const SIZE: usize = 32 << 20;
    let server = Server::start_with(&["--segment-size", "67108864", "--compaction-interval", "1"]);
    let s3 = client(&server);
    s3.create_bucket().bucket("space").send().await.unwrap();
    let started = std::time::Instant::now();
    // Two writers: segments fill roughly in key order, so the first half of the keys
    // occupies the oldest segments.
    for pair in (0..N).collect::<Vec<_>>().chunks(2) {
        let puts = pair.iter().map(|&i| {
            let s3 = s3.clone();
            async move { put_bytes(&s3, "space", &format!("k{i:02}"), &random_bytes(SIZE, i)).await }
        });
        futures::future::join_all(puts).await;
    }
    let full = server.datanode_bytes();
    println!(
        "wrote {} MiB in {:.1?}; datanodes use {} MiB",
        (N as usize * SIZE) >> 20,
        started.elapsed(),
        full >> 20
    );
    assert!(
        full > (N * SIZE as u64) * 3 / 2,
        "2 GiB of data plus parity, got {full}"
    );
    for i in 0..N / 2 {
        s3.delete_object()
            .bucket("space")
            .key(format!("k{i:02}"))
            .send()
            .await
            .unwrap();
    }
    let deleted_at = std::time::Instant::now();
    let deadline = deleted_at + std::time::Duration::from_secs(120);
    let target = full * 3 / 5;
    loop {
        let now = server.datanode_bytes();
        if now <= target {
            println!(
                "after deleting half: {} MiB -> {} MiB ({:.0}%) in {:.1?}",
                full >> 20,
                now >> 20,
                100.0 * now as f64 / full as f64,
                deleted_at.elapsed()
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "disk use only fell from {full} to {now} bytes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    for i in N / 2..N {
        let got = get_bytes(&s3, "space", &format!("k{i:02}")).await;
        assert!(
            got == random_bytes(SIZE, i),
            "k{i:02} changed by compaction"
        );
    }
    let listed = s3
        .list_objects_v2()
        .bucket("space")
        .send()
        .await
        .unwrap()
        .key_count()
        .unwrap_or(0);
    assert_eq!(listed, (N / 2) as i32);
}
