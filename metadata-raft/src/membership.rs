//! Membership changes: adding (or updating) and removing members of the Raft group, on the
//! leader or forwarded to it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;

use super::{BasicNode, ChangeReply, JoinRequest, NodeId, RaftNode, RemoveRequest};
use cairn_metadata::{MetadataError, Result};

impl RaftNode {
    /// Adds or updates a member (the leader's side; others forward to the leader).
    pub async fn add_node_as_leader(&self, req: JoinRequest) -> ChangeReply {
        if !self.is_leader() {
            return match self.leader() {
                Some((_, addr)) => self
                    .rpc
                    .call(&addr, "/raft/join", &req, Duration::from_secs(60))
                    .await
                    .unwrap_or_else(|e| ChangeReply::Failed(e.to_string())),
                None => ChangeReply::NotLeader,
            };
        }
        let m = self.raft.metrics().borrow().membership_config.clone();
        let membership = m.membership();
        let node = BasicNode::new(&req.addr);
        let known = membership.get_node(&req.id).cloned();
        let is_voter = membership.voter_ids().any(|v| v == req.id);
        let res = async {
            match known {
                None => {
                    self.raft.add_learner(req.id, node, true).await?;
                }
                Some(n) if n.addr != req.addr => {
                    let nodes = BTreeMap::from([(req.id, node)]);
                    self.raft
                        .change_membership(ChangeMembers::SetNodes(nodes), false)
                        .await?;
                }
                Some(_) => {}
            }
            if req.voter && !is_voter {
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([req.id])), false)
                    .await?;
            }
            Ok::<_, RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>(())
        };
        match tokio::time::timeout(Duration::from_secs(60), res).await {
            Ok(Ok(())) => {
                tracing::info!(id = req.id, addr = %req.addr, voter = req.voter, "node added");
                ChangeReply::Done
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                ChangeReply::NotLeader
            }
            Ok(Err(e)) => ChangeReply::Failed(e.to_string()),
            Err(_) => ChangeReply::Failed("the membership change did not commit in 60 s".into()),
        }
    }

    /// Removes a member from the group (voter or learner).
    pub async fn remove_node_as_leader(&self, id: NodeId) -> ChangeReply {
        if !self.is_leader() {
            return match self.leader() {
                Some((_, addr)) => self
                    .rpc
                    .call(
                        &addr,
                        "/raft/remove",
                        &RemoveRequest { id },
                        Duration::from_secs(60),
                    )
                    .await
                    .unwrap_or_else(|e| ChangeReply::Failed(e.to_string())),
                None => ChangeReply::NotLeader,
            };
        }
        let m = self.raft.metrics().borrow().membership_config.clone();
        let membership = m.membership();
        if membership.get_node(&id).is_none() {
            return ChangeReply::Failed(format!("node {id} is not a member"));
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if voters.contains(&id) && voters.len() == 1 {
            return ChangeReply::Failed("cannot remove the last metadata voter".into());
        }
        // One change either way: removing a voter without `retain` drops it from the nodes
        // too. A second change after it would be proposed by a leader that may have just
        // removed itself, which openraft does not survive (its core panics: found by the
        // fault campaign).
        let change = if voters.contains(&id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        let res = async {
            self.raft.change_membership(change, false).await?;
            Ok::<_, RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>(())
        };
        match tokio::time::timeout(Duration::from_secs(60), res).await {
            Ok(Ok(())) => ChangeReply::Done,
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                ChangeReply::NotLeader
            }
            Ok(Err(e)) => ChangeReply::Failed(e.to_string()),
            Err(_) => ChangeReply::Failed("the membership change did not commit in 60 s".into()),
        }
    }

    /// Adds a member from any node (forwarded to the leader).
    pub async fn add_node(&self, req: JoinRequest) -> Result<()> {
        match self.add_node_as_leader(req).await {
            ChangeReply::Done => Ok(()),
            ChangeReply::NotLeader => Err(MetadataError::Unavailable("no metadata leader".into())),
            ChangeReply::Failed(m) => Err(MetadataError::InvalidArgument(m)),
        }
    }

    /// Removes a member from any node (forwarded to the leader).
    pub async fn remove_node(&self, id: NodeId) -> Result<()> {
        match self.remove_node_as_leader(id).await {
            ChangeReply::Done => Ok(()),
            ChangeReply::NotLeader => Err(MetadataError::Unavailable("no metadata leader".into())),
            ChangeReply::Failed(m) => Err(MetadataError::InvalidArgument(m)),
        }
    }
}
