//! The slot table of a cluster in Redis Cluster's terms: every node by its 40-character id
//! and address, and which node owns each of the 16384 slots, under one epoch. Nodes in
//! cluster mode hold one and redirect by it; whoever is the membership authority (cache-proxy
//! today) builds it and pushes it with `CLUSTER SETTABLE`, whose arguments are
//! [`ClusterTable::to_args`] / [`ClusterTable::parse_args`]:
//!
//! ```text
//! CLUSTER SETTABLE <epoch> [<node-id> <ip> <port> <hostname|-> <ranges|->] ...
//!                                                  ranges: 0-5460,5462,6000-6010
//! ```
//!
//! ```
//! use cache_routing::{ClusterNode, ClusterTable};
//!
//! let a = ClusterNode::new("a".repeat(40), "10.0.0.1", 6379, vec![(0, 8191)]);
//! let b = ClusterNode::new("b".repeat(40), "10.0.0.2", 6379, vec![(8192, 16383)]);
//! let table = ClusterTable::new(7, vec![a, b]).unwrap();
//! assert_eq!(table.owner(9000).map(|n| n.port), Some(6379));
//! let args = table.to_args();
//! let words: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
//! assert_eq!(ClusterTable::parse_args(&words).unwrap(), table);
//! ```

use crate::slot::SLOTS;

/// No node owns the slot.
const UNOWNED: u16 = u16::MAX;

/// Length of a node id, as Redis's `CLUSTER_NAMELEN`.
pub const NODE_ID_LEN: usize = 40;

/// One node of the table: its id, the address clients reach it at, and the slot ranges it
/// owns (inclusive, ascending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: String,
    pub ip: String,
    pub port: u16,
    /// Announced hostname; empty when none.
    pub hostname: String,
    pub ranges: Vec<(u16, u16)>,
}

impl ClusterNode {
    pub fn new(id: String, ip: &str, port: u16, ranges: Vec<(u16, u16)>) -> ClusterNode {
        ClusterNode {
            id,
            ip: ip.to_string(),
            port,
            hostname: String::new(),
            ranges,
        }
    }

    /// How many slots the node owns.
    pub fn slot_count(&self) -> usize {
        self.ranges
            .iter()
            .map(|(a, b)| usize::from(b - a) + 1)
            .sum()
    }
}

/// The table: nodes in the order given, and each slot's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTable {
    pub epoch: u64,
    pub nodes: Vec<ClusterNode>,
    owner: Vec<u16>,
    /// How many slots have an owner (asked on every request by a node in cluster mode).
    assigned: usize,
}

/// Why a table was refused (the text follows `ERR `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("Invalid epoch '{0}'")]
    Epoch(String),
    #[error(
        "CLUSTER SETTABLE takes an epoch and groups of node-id, ip, port, hostname, slot ranges"
    )]
    Shape,
    #[error("Invalid node id '{0}': 40 hexadecimal characters expected")]
    NodeId(String),
    #[error("Node id {0} is listed twice")]
    DuplicateNode(String),
    #[error("Invalid TCP port '{0}'")]
    Port(String),
    #[error("Invalid slot range '{0}'")]
    Range(String),
    #[error("Slot {0} is assigned twice")]
    SlotTwice(u16),
    #[error("Too many nodes")]
    TooManyNodes,
}

impl ClusterTable {
    /// The table of a node that has been given none: no node, no slot assigned.
    pub fn empty() -> ClusterTable {
        ClusterTable {
            epoch: 0,
            nodes: Vec::new(),
            owner: vec![UNOWNED; SLOTS],
            assigned: 0,
        }
    }

    /// Checks ids and ranges and indexes the owners.
    pub fn new(epoch: u64, mut nodes: Vec<ClusterNode>) -> Result<ClusterTable, TableError> {
        if nodes.len() >= usize::from(UNOWNED) {
            return Err(TableError::TooManyNodes);
        }
        let mut owner = vec![UNOWNED; SLOTS];
        for (i, node) in nodes.iter_mut().enumerate() {
            if !valid_id(&node.id) {
                return Err(TableError::NodeId(node.id.clone()));
            }
            node.id.make_ascii_lowercase();
            node.ranges = merge(std::mem::take(&mut node.ranges));
            for &(start, end) in &node.ranges {
                if start > end || usize::from(end) >= SLOTS {
                    return Err(TableError::Range(format!("{start}-{end}")));
                }
                for slot in start..=end {
                    if owner[usize::from(slot)] != UNOWNED {
                        return Err(TableError::SlotTwice(slot));
                    }
                    owner[usize::from(slot)] = i as u16;
                }
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            if nodes[..i].iter().any(|n| n.id == node.id) {
                return Err(TableError::DuplicateNode(node.id.clone()));
            }
        }
        let assigned = owner.iter().filter(|&&o| o != UNOWNED).count();
        Ok(ClusterTable {
            epoch,
            nodes,
            owner,
            assigned,
        })
    }

    /// Reads the arguments of `CLUSTER SETTABLE` after the subcommand.
    pub fn parse_args(args: &[&[u8]]) -> Result<ClusterTable, TableError> {
        let Some((epoch, groups)) = args.split_first() else {
            return Err(TableError::Shape);
        };
        let text = |a: &[u8]| String::from_utf8_lossy(a).into_owned();
        let epoch = std::str::from_utf8(epoch)
            .ok()
            .and_then(|e| e.parse::<u64>().ok())
            .ok_or_else(|| TableError::Epoch(text(epoch)))?;
        if groups.len() % 5 != 0 {
            return Err(TableError::Shape);
        }
        if groups.len() / 5 >= usize::from(UNOWNED) {
            return Err(TableError::TooManyNodes);
        }
        let mut nodes = Vec::with_capacity(groups.len() / 5);
        for g in groups.chunks(5) {
            let port = std::str::from_utf8(g[2])
                .ok()
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| TableError::Port(text(g[2])))?;
            let hostname = match g[3] {
                b"-" => String::new(),
                h => text(h),
            };
            nodes.push(ClusterNode {
                id: text(g[0]),
                ip: text(g[1]),
                port,
                hostname,
                ranges: parse_ranges(g[4])?,
            });
        }
        ClusterTable::new(epoch, nodes)
    }

    /// The arguments of `CLUSTER SETTABLE` (after the subcommand) that describe this table.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![self.epoch.to_string()];
        for node in &self.nodes {
            let ranges: Vec<String> = node
                .ranges
                .iter()
                .map(|&(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            args.push(node.id.clone());
            args.push(node.ip.clone());
            args.push(node.port.to_string());
            args.push(if node.hostname.is_empty() {
                "-".into()
            } else {
                node.hostname.clone()
            });
            args.push(if ranges.is_empty() {
                "-".into()
            } else {
                ranges.join(",")
            });
        }
        args
    }

    /// Index (into [`ClusterTable::nodes`]) of the owner of `slot`.
    pub fn owner_index(&self, slot: u16) -> Option<usize> {
        match self.owner.get(usize::from(slot)) {
            Some(&i) if i != UNOWNED => Some(usize::from(i)),
            _ => None,
        }
    }

    pub fn owner(&self, slot: u16) -> Option<&ClusterNode> {
        self.owner_index(slot).map(|i| &self.nodes[i])
    }

    /// Index of the node with this id.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.id.eq_ignore_ascii_case(id))
    }

    /// How many slots have an owner.
    pub fn assigned(&self) -> usize {
        self.assigned
    }

    /// Nodes owning at least one slot (Redis's `cluster_size`).
    pub fn size(&self) -> usize {
        self.nodes.iter().filter(|n| !n.ranges.is_empty()).count()
    }

    /// The owned slots as maximal runs `(start, end, owner index)`, in slot order (what
    /// `CLUSTER SLOTS` lists).
    pub fn runs(&self) -> Vec<(u16, u16, usize)> {
        let mut runs: Vec<(u16, u16, usize)> = Vec::new();
        for (slot, &o) in self.owner.iter().enumerate() {
            if o == UNOWNED {
                continue;
            }
            let slot = slot as u16;
            match runs.last_mut() {
                Some((_, end, owner)) if *owner == usize::from(o) && *end + 1 == slot => {
                    *end = slot;
                }
                _ => runs.push((slot, slot, usize::from(o))),
            }
        }
        runs
    }
}

/// A fresh node id: 40 random hexadecimal characters, as Redis makes them.
pub fn random_node_id() -> String {
    (0..NODE_ID_LEN)
        .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
        .collect()
}

fn valid_id(id: &str) -> bool {
    id.len() == NODE_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `0-5460,5462` (or `-` for none): inclusive ranges, merged where adjacent.
fn parse_ranges(arg: &[u8]) -> Result<Vec<(u16, u16)>, TableError> {
    if arg == b"-" {
        return Ok(Vec::new());
    }
    let text = std::str::from_utf8(arg)
        .map_err(|_| TableError::Range(String::from_utf8_lossy(arg).into_owned()))?;
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for part in text.split(',') {
        let bad = || TableError::Range(part.to_string());
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        );
        if a > b || usize::from(b) >= SLOTS {
            return Err(bad());
        }
        ranges.push((a, b));
    }
    Ok(merge(ranges))
}

/// Sorted, with adjacent ranges merged.
fn merge(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match merged.last_mut() {
            Some((_, end)) if u32::from(*end) + 1 == u32::from(a) => *end = b,
            _ => merged.push((a, b)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        c.to_string().repeat(NODE_ID_LEN)
    }

    fn words(line: &str) -> Vec<&[u8]> {
        line.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn parses_groups_and_indexes_owners() {
        let line = format!(
            "3 {} 10.0.0.1 7000 - 0-100,102 {} 10.0.0.2 7001 cache-b 101,103-16383",
            id('a'),
            id('B')
        );
        let t = ClusterTable::parse_args(&words(&line)).unwrap();
        assert_eq!(t.epoch, 3);
        assert_eq!(t.nodes[1].id, id('b'), "ids are kept in lowercase");
        assert_eq!(t.nodes[1].hostname, "cache-b");
        assert_eq!(t.owner(101).unwrap().port, 7001);
        assert_eq!(t.owner(102).unwrap().port, 7000);
        assert_eq!(t.assigned(), SLOTS);
        assert_eq!(
            t.runs(),
            vec![(0, 100, 0), (101, 101, 1), (102, 102, 0), (103, 16383, 1)]
        );
        assert_eq!(t.nodes[0].slot_count(), 102);
    }

    #[test]
    fn refuses_what_is_not_a_table() {
        let a = id('a');
        let cases = [
            ("x".to_string(), TableError::Epoch("x".into())),
            (format!("1 {a} 10.0.0.1 7000 -"), TableError::Shape),
            (
                "1 abc 10.0.0.1 7000 - -".to_string(),
                TableError::NodeId("abc".into()),
            ),
            (
                format!("1 {a} 10.0.0.1 70000 - -"),
                TableError::Port("70000".into()),
            ),
            (
                format!("1 {a} 10.0.0.1 7000 - 5-3"),
                TableError::Range("5-3".into()),
            ),
            (
                format!("1 {a} 10.0.0.1 7000 - 16384"),
                TableError::Range("16384".into()),
            ),
            (
                format!("1 {a} h 1 - 0-10 {} h 2 - 10", id('c')),
                TableError::SlotTwice(10),
            ),
            (
                format!("1 {a} h 1 - - {a} h 2 - -"),
                TableError::DuplicateNode(a.clone()),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(ClusterTable::parse_args(&words(&line)), Err(want), "{line}");
        }
    }

    #[test]
    fn round_trips_through_its_arguments() {
        let mut b = ClusterNode::new(id('b'), "::1", 7001, vec![(5, 9), (0, 4), (20, 20)]);
        b.hostname = "b.example".into();
        let t = ClusterTable::new(9, vec![ClusterNode::new(id('a'), "h", 1, vec![]), b]).unwrap();
        let args = t.to_args();
        assert_eq!(args[5], "-");
        assert_eq!(args[10], "0-9,20", "adjacent ranges merge");
        let words: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let back = ClusterTable::parse_args(&words).unwrap();
        assert_eq!(back.nodes[1].ranges, vec![(0, 9), (20, 20)]);
        assert_eq!(back.runs(), vec![(0, 9, 1), (20, 20, 1)]);
        assert!(ClusterTable::empty().runs().is_empty());
    }
}
