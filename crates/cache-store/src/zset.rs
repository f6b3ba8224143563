//! Sorted sets: a member→score table plus an order-statistics B+tree of (score, member), so
//! rank, range-by-score and range-by-lex are O(log n).
//!
//! Why a B+tree and not Redis's skip list: a skip-list search takes a cache miss on nearly
//! every node it steps on, about 20 for 100k members. A B+tree with 32-way nodes reaches a
//! leaf through three or four nodes whose upper levels stay in cache, and a node's scores sit
//! side by side, so a binary search in it reads two or three lines. Members of up to 22 bytes
//! live inside the leaf ([`Key`]), so a tie on score is settled without following a pointer.
//! Every inner entry keeps its subtree's element count, which gives rank and index in
//! O(log n). Nodes live in arenas (indices instead of pointers, no `unsafe`).

use std::cmp::Ordering;
use std::fmt;

use indexmap::IndexMap;

use crate::Key;

const LEAF_CAP: usize = 32;
const INNER_CAP: usize = 32;
/// A node below this many entries takes from or merges with a sibling. A quarter, not half,
/// so that a node hovering at the threshold does not split and merge on alternate writes.
const LEAF_MIN: usize = LEAF_CAP / 4;
const INNER_MIN: usize = INNER_CAP / 4;
/// Inner levels above the leaves: with at least `INNER_MIN` children per non-root node,
/// 16 levels hold far more than a `u32` count of elements.
const MAX_HEIGHT: usize = 16;
const NIL: u32 = u32::MAX;
const EMPTY: Key = Key::Inline {
    len: 0,
    bytes: [0; crate::key::INLINE_KEY_MAX],
};

/// Whether (score_a, member_a) orders before (score_b, member_b): by score, then bytewise by
/// member, as Redis orders a sorted set. Scores are never NaN.
#[inline]
fn before(score_a: f64, member_a: &[u8], score_b: f64, member_b: &[u8]) -> bool {
    score_a < score_b || (score_a == score_b && member_a < member_b)
}

/// Orders (score, member) pairs as Redis does: by score, then bytewise by member.
fn cmp(score_a: f64, member_a: &[u8], score_b: f64, member_b: &[u8]) -> Ordering {
    score_a
        .partial_cmp(&score_b)
        .unwrap_or(Ordering::Equal)
        .then_with(|| member_a.cmp(member_b))
}

/// The first index in `0..len` where `pred` fails (it must hold for a prefix).
#[inline]
fn partition(mut lo: usize, mut hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[derive(Clone)]
struct Leaf {
    len: u32,
    prev: u32,
    next: u32,
    scores: [f64; LEAF_CAP],
    members: [Key; LEAF_CAP],
}

impl Leaf {
    fn new() -> Leaf {
        Leaf {
            len: 0,
            prev: NIL,
            next: NIL,
            scores: [0.0; LEAF_CAP],
            members: [EMPTY; LEAF_CAP],
        }
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    /// The index of the first element not before (score, member).
    #[inline]
    fn lower_bound(&self, score: f64, member: &[u8]) -> usize {
        partition(0, self.len(), |i| {
            before(self.scores[i], &self.members[i], score, member)
        })
    }

    fn insert_at(&mut self, i: usize, score: f64, member: Key) {
        let len = self.len();
        self.scores.copy_within(i..len, i + 1);
        self.scores[i] = score;
        self.members[i..=len].rotate_right(1);
        self.members[i] = member;
        self.len += 1;
    }

    fn remove_at(&mut self, i: usize) -> (f64, Key) {
        let len = self.len();
        let score = self.scores[i];
        let member = std::mem::replace(&mut self.members[i], EMPTY);
        self.scores.copy_within(i + 1..len, i);
        self.members[i..len].rotate_left(1);
        self.len -= 1;
        (score, member)
    }

    fn push(&mut self, score: f64, member: Key) {
        let len = self.len();
        self.insert_at(len, score, member);
    }
}

/// Child `i` holds the elements `e` with `seps[i] <= e < seps[i + 1]`. `seps[0]` is never
/// searched; it is the node's own lower bound, handed to the parent when a split makes this
/// node a right half.
#[derive(Clone)]
struct Inner {
    len: u32,
    counts: [u32; INNER_CAP],
    children: [u32; INNER_CAP],
    sep_scores: [f64; INNER_CAP],
    sep_members: [Key; INNER_CAP],
}

impl Inner {
    fn new() -> Inner {
        Inner {
            len: 0,
            counts: [0; INNER_CAP],
            children: [NIL; INNER_CAP],
            sep_scores: [0.0; INNER_CAP],
            sep_members: [EMPTY; INNER_CAP],
        }
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    /// The child whose range holds (score, member): the number of separators after the
    /// first that are not after it.
    #[inline]
    fn child_for(&self, score: f64, member: &[u8]) -> usize {
        partition(1, self.len(), |i| {
            !before(score, member, self.sep_scores[i], &self.sep_members[i])
        }) - 1
    }

    fn total(&self) -> u32 {
        self.counts[..self.len()].iter().sum()
    }

    fn insert_at(&mut self, i: usize, sep: (f64, Key), child: u32, count: u32) {
        let len = self.len();
        self.counts.copy_within(i..len, i + 1);
        self.children.copy_within(i..len, i + 1);
        self.sep_scores.copy_within(i..len, i + 1);
        self.sep_members[i..=len].rotate_right(1);
        self.counts[i] = count;
        self.children[i] = child;
        self.sep_scores[i] = sep.0;
        self.sep_members[i] = sep.1;
        self.len += 1;
    }

    fn remove_at(&mut self, i: usize) -> ((f64, Key), u32, u32) {
        let len = self.len();
        let sep = (
            self.sep_scores[i],
            std::mem::replace(&mut self.sep_members[i], EMPTY),
        );
        let (child, count) = (self.children[i], self.counts[i]);
        self.counts.copy_within(i + 1..len, i);
        self.children.copy_within(i + 1..len, i);
        self.sep_scores.copy_within(i + 1..len, i);
        self.sep_members[i..len].rotate_left(1);
        self.len -= 1;
        (sep, child, count)
    }

    fn sep(&self, i: usize) -> (f64, Key) {
        (self.sep_scores[i], self.sep_members[i].clone())
    }

    fn set_sep(&mut self, i: usize, sep: (f64, Key)) {
        self.sep_scores[i] = sep.0;
        self.sep_members[i] = sep.1;
    }
}

/// The inner nodes a descent went through, root first, with the child taken in each.
type Path = [(u32, u32); MAX_HEIGHT];

/// An order-statistics B+tree of (score, member), ordered as Redis orders a sorted set.
#[derive(Clone)]
pub struct ScoreTree {
    leaves: Vec<Leaf>,
    inners: Vec<Inner>,
    free_leaves: Vec<u32>,
    free_inners: Vec<u32>,
    root: u32,
    /// Inner levels above the leaves; 0 while the root is a leaf.
    height: usize,
    first: u32,
    last: u32,
    len: usize,
}

impl Default for ScoreTree {
    fn default() -> Self {
        ScoreTree {
            leaves: vec![Leaf::new()],
            inners: Vec::new(),
            free_leaves: Vec::new(),
            free_inners: Vec::new(),
            root: 0,
            height: 0,
            first: 0,
            last: 0,
            len: 0,
        }
    }
}

impl fmt::Debug for ScoreTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut cur = self.first();
        while let Some(pos) = cur {
            list.entry(&self.entry(pos));
            cur = self.next(pos);
        }
        list.finish()
    }
}

/// A position in the tree (a leaf and a slot in it), valid until the next change: pass to
/// [`ScoreTree::entry`], [`ScoreTree::next`], [`ScoreTree::prev`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeId {
    leaf: u32,
    slot: u32,
}

impl ScoreTree {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn alloc_leaf(&mut self) -> u32 {
        match self.free_leaves.pop() {
            Some(id) => id,
            None => {
                self.leaves.push(Leaf::new());
                (self.leaves.len() - 1) as u32
            }
        }
    }

    fn alloc_inner(&mut self) -> u32 {
        match self.free_inners.pop() {
            Some(id) => id,
            None => {
                self.inners.push(Inner::new());
                (self.inners.len() - 1) as u32
            }
        }
    }

    /// Walks from the root to the leaf whose range holds (score, member), recording the path.
    #[inline]
    fn descend(&self, score: f64, member: &[u8], path: &mut Path) -> u32 {
        let mut node = self.root;
        for step in path.iter_mut().take(self.height) {
            let inner = &self.inners[node as usize];
            let j = inner.child_for(score, member);
            *step = (node, j as u32);
            node = inner.children[j];
        }
        node
    }

    /// Adds (score, member), which must not be in the tree.
    pub fn insert(&mut self, score: f64, member: Key) {
        let mut path: Path = [(0, 0); MAX_HEIGHT];
        let leaf = self.descend(score, &member, &mut path);
        for &(node, j) in &path[..self.height] {
            self.inners[node as usize].counts[j as usize] += 1;
        }
        self.len += 1;
        let pos = self.leaves[leaf as usize].lower_bound(score, &member);
        if self.leaves[leaf as usize].len() < LEAF_CAP {
            self.leaves[leaf as usize].insert_at(pos, score, member);
            return;
        }
        // Split the full leaf in two; the new element goes to whichever half it falls in.
        let right = self.alloc_leaf();
        let half = LEAF_CAP / 2;
        let mut moved = Leaf::new();
        {
            let left = &mut self.leaves[leaf as usize];
            for i in half..LEAF_CAP {
                moved.push(
                    left.scores[i],
                    std::mem::replace(&mut left.members[i], EMPTY),
                );
            }
            left.len = half as u32;
            moved.prev = leaf;
            moved.next = left.next;
            left.next = right;
        }
        match moved.next {
            NIL => self.last = right,
            next => self.leaves[next as usize].prev = right,
        }
        self.leaves[right as usize] = moved;
        if pos <= half {
            self.leaves[leaf as usize].insert_at(pos, score, member);
        } else {
            self.leaves[right as usize].insert_at(pos - half, score, member);
        }
        let r = &self.leaves[right as usize];
        let sep = (r.scores[0], r.members[0].clone());
        let counts = (self.leaves[leaf as usize].len, r.len);
        self.add_child(&path, sep, right, counts);
    }

    /// After the node at the end of `path` split, adds its new right half `child` (lower
    /// bound `sep`) to the parent, splitting upwards as needed. `counts` are the two halves'.
    fn add_child(&mut self, path: &Path, mut sep: (f64, Key), mut child: u32, counts: (u32, u32)) {
        let (mut left_count, mut right_count) = counts;
        let mut depth = self.height;
        loop {
            if depth == 0 {
                // The root split: a new root above the two halves.
                let root = self.alloc_inner();
                let mut node = Inner::new();
                node.insert_at(0, (f64::NEG_INFINITY, EMPTY), self.root, left_count);
                node.insert_at(1, sep, child, right_count);
                self.inners[root as usize] = node;
                self.root = root;
                self.height += 1;
                return;
            }
            depth -= 1;
            let (parent, j) = path[depth];
            let (parent, j) = (parent as usize, j as usize);
            let p = &mut self.inners[parent];
            p.counts[j] = left_count;
            if p.len() < INNER_CAP {
                p.insert_at(j + 1, sep, child, right_count);
                return;
            }
            let half = INNER_CAP / 2;
            let mut moved = Inner::new();
            for i in half..INNER_CAP {
                let s = (
                    p.sep_scores[i],
                    std::mem::replace(&mut p.sep_members[i], EMPTY),
                );
                moved.insert_at(i - half, s, p.children[i], p.counts[i]);
            }
            p.len = half as u32;
            if j < half {
                p.insert_at(j + 1, sep, child, right_count);
            } else {
                moved.insert_at(j + 1 - half, sep, child, right_count);
            }
            let right = self.alloc_inner();
            left_count = self.inners[parent].total();
            right_count = moved.total();
            sep = moved.sep(0);
            self.inners[right as usize] = moved;
            child = right;
        }
    }

    /// Removes (score, member); returns the member if it was there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> Option<Key> {
        let mut path: Path = [(0, 0); MAX_HEIGHT];
        let (leaf, pos) = self.find(score, member, &mut path)?;
        Some(self.take(&path, leaf, pos))
    }

    /// Where (score, member) is: its leaf and slot, with the path to it.
    fn find(&self, score: f64, member: &[u8], path: &mut Path) -> Option<(u32, usize)> {
        let leaf = self.descend(score, member, path);
        let l = &self.leaves[leaf as usize];
        let pos = l.lower_bound(score, member);
        (pos < l.len() && l.scores[pos] == score && &*l.members[pos] == member)
            .then_some((leaf, pos))
    }

    /// Removes the element `find` located, and rebalances.
    fn take(&mut self, path: &Path, leaf: u32, pos: usize) -> Key {
        let (_, key) = self.leaves[leaf as usize].remove_at(pos);
        for &(node, j) in &path[..self.height] {
            self.inners[node as usize].counts[j as usize] -= 1;
        }
        self.len -= 1;
        self.rebalance(path, leaf);
        key
    }

    /// Restores the minimum fill after a removal from `leaf`, merging or borrowing upwards.
    fn rebalance(&mut self, path: &Path, leaf: u32) {
        let mut node = leaf;
        let mut depth = self.height;
        loop {
            if depth == 0 {
                if self.height > 0 && self.inners[self.root as usize].len == 1 {
                    let old = self.root;
                    self.root = self.inners[old as usize].children[0];
                    self.inners[old as usize] = Inner::new();
                    self.free_inners.push(old);
                    self.height -= 1;
                }
                return;
            }
            let is_leaf = depth == self.height;
            let size = if is_leaf {
                self.leaves[node as usize].len()
            } else {
                self.inners[node as usize].len()
            };
            if size >= if is_leaf { LEAF_MIN } else { INNER_MIN } {
                return;
            }
            depth -= 1;
            let (parent, j) = path[depth];
            let left_index = (j as usize).saturating_sub(1);
            let merged = if is_leaf {
                self.balance_leaves(parent, left_index)
            } else {
                self.balance_inners(parent, left_index)
            };
            if !merged {
                return;
            }
            node = parent;
        }
    }

    /// Merges leaf children `i` and `i + 1` of `parent` if they fit in one, else evens them
    /// out. Returns whether they merged (the parent lost a child).
    fn balance_leaves(&mut self, parent: u32, i: usize) -> bool {
        let p = &self.inners[parent as usize];
        let (l, r) = (p.children[i], p.children[i + 1]);
        let (llen, rlen) = (self.leaves[l as usize].len(), self.leaves[r as usize].len());
        if llen + rlen <= LEAF_CAP {
            let mut right = std::mem::replace(&mut self.leaves[r as usize], Leaf::new());
            let left = &mut self.leaves[l as usize];
            for k in 0..rlen {
                left.push(
                    right.scores[k],
                    std::mem::replace(&mut right.members[k], EMPTY),
                );
            }
            left.next = right.next;
            match right.next {
                NIL => self.last = l,
                next => self.leaves[next as usize].prev = l,
            }
            self.free_leaves.push(r);
            let p = &mut self.inners[parent as usize];
            p.counts[i] += p.counts[i + 1];
            p.remove_at(i + 1);
            return true;
        }
        let (mut left, mut right) = (
            std::mem::replace(&mut self.leaves[l as usize], Leaf::new()),
            std::mem::replace(&mut self.leaves[r as usize], Leaf::new()),
        );
        if llen < rlen {
            for _ in 0..(rlen - llen) / 2 {
                let (s, m) = right.remove_at(0);
                left.push(s, m);
            }
        } else {
            for _ in 0..(llen - rlen) / 2 {
                let (s, m) = left.remove_at(left.len() - 1);
                right.insert_at(0, s, m);
            }
        }
        let p = &mut self.inners[parent as usize];
        p.set_sep(i + 1, (right.scores[0], right.members[0].clone()));
        p.counts[i] = left.len;
        p.counts[i + 1] = right.len;
        self.leaves[l as usize] = left;
        self.leaves[r as usize] = right;
        false
    }

    /// As [`Self::balance_leaves`], for inner children `i` and `i + 1` of `parent`.
    fn balance_inners(&mut self, parent: u32, i: usize) -> bool {
        let p = &mut self.inners[parent as usize];
        let (l, r) = (p.children[i] as usize, p.children[i + 1] as usize);
        // The parent's separator between the two is the right node's lower bound.
        let mut middle = p.sep(i + 1);
        let mut left = std::mem::replace(&mut self.inners[l], Inner::new());
        let mut right = std::mem::replace(&mut self.inners[r], Inner::new());
        right.set_sep(0, middle.clone());
        let merged = left.len() + right.len() <= INNER_CAP;
        if merged {
            while right.len > 0 {
                let (s, c, n) = right.remove_at(0);
                left.insert_at(left.len(), s, c, n);
            }
            self.free_inners.push(r as u32);
        } else if left.len() < right.len() {
            for _ in 0..(right.len() - left.len()) / 2 {
                let (s, c, n) = right.remove_at(0);
                left.insert_at(left.len(), s, c, n);
            }
            middle = right.sep(0);
        } else {
            for _ in 0..(left.len() - right.len()) / 2 {
                let (s, c, n) = left.remove_at(left.len() - 1);
                right.insert_at(0, s, c, n);
            }
            middle = right.sep(0);
        }
        let p = &mut self.inners[parent as usize];
        if merged {
            p.counts[i] += p.counts[i + 1];
            p.remove_at(i + 1);
        } else {
            p.counts[i] = left.total();
            p.counts[i + 1] = right.total();
            p.set_sep(i + 1, middle);
        }
        self.inners[l] = left;
        self.inners[r] = right;
        merged
    }

    /// Changes a member's score; `member` must be in the tree with score `old` (as the member
    /// map says). When the member keeps its place among its leaf neighbours it is updated
    /// where it is, as Redis's `zslUpdateScore` does: one descent, nothing moves.
    pub fn update_score(&mut self, old: f64, member: &[u8], new: f64) {
        let mut path: Path = [(0, 0); MAX_HEIGHT];
        let Some((leaf, pos)) = self.find(old, member, &mut path) else {
            self.insert(new, Key::new(member));
            return;
        };
        let l = &mut self.leaves[leaf as usize];
        if pos > 0
            && pos + 1 < l.len()
            && before(l.scores[pos - 1], &l.members[pos - 1], new, member)
            && before(new, member, l.scores[pos + 1], &l.members[pos + 1])
        {
            l.scores[pos] = new;
            return;
        }
        // Out of place: unlink it along the path this descent found, and insert it anew.
        let key = self.take(&path, leaf, pos);
        self.insert(new, key);
    }

    /// How many leading elements satisfy `pred` (which must hold for a prefix of the order):
    /// the index of the first element where it does not.
    pub fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut node = self.root;
        let mut index = 0usize;
        for _ in 0..self.height {
            let inner = &self.inners[node as usize];
            let j = partition(1, inner.len(), |i| {
                pred(inner.sep_scores[i], &inner.sep_members[i])
            }) - 1;
            index += inner.counts[..j].iter().map(|&c| c as usize).sum::<usize>();
            node = inner.children[j];
        }
        let leaf = &self.leaves[node as usize];
        index + partition(0, leaf.len(), |i| pred(leaf.scores[i], &leaf.members[i]))
    }

    /// The element at a 0-based index.
    pub fn at(&self, index: usize) -> Option<NodeId> {
        if index >= self.len {
            return None;
        }
        let mut rest = index;
        let mut node = self.root;
        for _ in 0..self.height {
            let inner = &self.inners[node as usize];
            let mut j = 0;
            while rest >= inner.counts[j] as usize {
                rest -= inner.counts[j] as usize;
                j += 1;
            }
            node = inner.children[j];
        }
        Some(NodeId {
            leaf: node,
            slot: rest as u32,
        })
    }

    pub fn entry(&self, id: NodeId) -> (&[u8], f64) {
        let leaf = &self.leaves[id.leaf as usize];
        (
            &leaf.members[id.slot as usize],
            leaf.scores[id.slot as usize],
        )
    }

    pub fn next(&self, id: NodeId) -> Option<NodeId> {
        let leaf = &self.leaves[id.leaf as usize];
        if id.slot + 1 < leaf.len {
            return Some(NodeId {
                leaf: id.leaf,
                slot: id.slot + 1,
            });
        }
        // Only the root leaf can be empty, and then there is no next.
        (leaf.next != NIL).then_some(NodeId {
            leaf: leaf.next,
            slot: 0,
        })
    }

    pub fn prev(&self, id: NodeId) -> Option<NodeId> {
        if id.slot > 0 {
            return Some(NodeId {
                leaf: id.leaf,
                slot: id.slot - 1,
            });
        }
        let prev = self.leaves[id.leaf as usize].prev;
        (prev != NIL).then(|| NodeId {
            leaf: prev,
            slot: self.leaves[prev as usize].len - 1,
        })
    }

    pub fn first(&self) -> Option<NodeId> {
        (self.len > 0).then_some(NodeId {
            leaf: self.first,
            slot: 0,
        })
    }

    pub fn last(&self) -> Option<NodeId> {
        (self.len > 0).then(|| NodeId {
            leaf: self.last,
            slot: self.leaves[self.last as usize].len - 1,
        })
    }
}

/// A sorted set: member → score, and the B+tree for order.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    pub scores: IndexMap<Key, f64, hashbrown::DefaultHashBuilder>,
    pub tree: ScoreTree,
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.scores.len() == other.scores.len()
            && self
                .scores
                .iter()
                .all(|(m, s)| other.scores.get(m) == Some(s))
    }
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets a member's score; returns true if the member is new.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        match self.scores.get_mut(member) {
            Some(old) => {
                // Bitwise, so -0 and 0 (equal as floats) replace each other: Redis's
                // ZUNION/ZINTER replies tell them apart ("-0" vs "0").
                if old.to_bits() != score.to_bits() {
                    self.tree.update_score(*old, member, score);
                    *old = score;
                }
                false
            }
            None => {
                self.scores.insert(member.into(), score);
                self.tree.insert(score, Key::new(member));
                true
            }
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.swap_remove(member) {
            Some(score) => {
                self.tree.remove(score, member);
                true
            }
            None => false,
        }
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(
            self.tree
                .count_while(|s, m| cmp(s, m, score, member) == Ordering::Less),
        )
    }

    /// Members in ascending order, as (member, score).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> {
        let mut cur = self.tree.first();
        std::iter::from_fn(move || {
            let id = cur?;
            cur = self.tree.next(id);
            Some(self.tree.entry(id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ScoreTree {
        /// Checks every structural invariant: counts, separators, fill, leaf links, order.
        fn check(&self) {
            fn walk(
                t: &ScoreTree,
                node: u32,
                depth: usize,
                lo: Option<(f64, &[u8])>,
                leaves: &mut Vec<u32>,
            ) -> usize {
                if depth == t.height {
                    let leaf = &t.leaves[node as usize];
                    if node != t.root {
                        assert!(leaf.len() >= LEAF_MIN, "leaf underfull");
                    }
                    for i in 0..leaf.len() {
                        if let Some((s, m)) = lo {
                            assert!(
                                !before(leaf.scores[i], &leaf.members[i], s, m),
                                "below separator"
                            );
                        }
                        if i > 0 {
                            assert!(before(
                                leaf.scores[i - 1],
                                &leaf.members[i - 1],
                                leaf.scores[i],
                                &leaf.members[i]
                            ));
                        }
                    }
                    leaves.push(node);
                    return leaf.len();
                }
                let inner = &t.inners[node as usize];
                assert!(
                    inner.len() >= if node == t.root { 2 } else { INNER_MIN },
                    "inner underfull"
                );
                let mut total = 0;
                for j in 0..inner.len() {
                    let bound = if j == 0 {
                        lo
                    } else {
                        Some((inner.sep_scores[j], &inner.sep_members[j][..]))
                    };
                    let n = walk(t, inner.children[j], depth + 1, bound, leaves);
                    assert_eq!(n, inner.counts[j] as usize, "count");
                    total += n;
                }
                total
            }
            let mut leaves = Vec::new();
            assert_eq!(walk(self, self.root, 0, None, &mut leaves), self.len);
            assert_eq!(self.first, leaves[0]);
            assert_eq!(self.last, *leaves.last().unwrap());
            for w in leaves.windows(2) {
                assert_eq!(self.leaves[w[0] as usize].next, w[1]);
                assert_eq!(self.leaves[w[1] as usize].prev, w[0]);
            }
        }
    }

    /// Random inserts, updates and removes against a model (a map and an ordered set), with
    /// few distinct scores (ties settled by member) and enough members for several levels.
    fn run_against_model(seed: u64, steps: usize, members: u64, scores: u64) -> usize {
        use std::collections::{BTreeSet, HashMap};
        let mut z = ZSet::default();
        // Scores are whole and non-negative, so (u64, bytes) orders as (f64, bytes).
        let mut by_member: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut ordered: BTreeSet<(u64, Vec<u8>)> = BTreeSet::new();
        let mut x: u64 = seed;
        let mut tallest = 0;
        for step in 0..steps {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let member = format!("m{}", x % members).into_bytes();
            let score = (x >> 20) % scores;
            if let Some(old) = by_member.remove(&member) {
                ordered.remove(&(old, member.clone()));
            }
            // Phases: mostly growing, then mostly shrinking, so merges happen at every level.
            let remove_share = if step < steps / 2 { 3 } else { 7 };
            if (x >> 40) % 10 < remove_share {
                z.remove(&member);
            } else {
                z.insert(&member, score as f64);
                by_member.insert(member.clone(), score);
                ordered.insert((score, member));
            }
            tallest = tallest.max(z.tree.height);
            if step % 997 == 0 {
                z.tree.check();
            }
        }
        z.tree.check();
        let model: Vec<(f64, Vec<u8>)> = ordered.into_iter().map(|(s, m)| (s as f64, m)).collect();
        assert_eq!(z.len(), model.len());
        assert_eq!(z.tree.len(), model.len());
        let got: Vec<(f64, Vec<u8>)> = z.iter().map(|(m, s)| (s, m.to_vec())).collect();
        assert_eq!(got, model);
        for (i, (_, m)) in model.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            let id = z.tree.at(i).unwrap();
            assert_eq!(z.tree.entry(id).0, &m[..]);
        }
        assert_eq!(z.tree.at(model.len()), None);
        let below = (scores / 3) as f64;
        let count = z.tree.count_while(|s, _| s < below);
        assert_eq!(count, model.iter().filter(|(s, _)| *s < below).count());
        // Walking backwards from the end visits everything in reverse.
        let mut back = Vec::new();
        let mut cur = z.tree.last();
        while let Some(id) = cur {
            back.push(z.tree.entry(id).0.to_vec());
            cur = z.tree.prev(id);
        }
        back.reverse();
        assert_eq!(
            back,
            model.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>()
        );
        tallest
    }

    #[test]
    fn ranks_and_ranges_match_a_sorted_vec() {
        assert!(run_against_model(12345, 3000, 500, 50) >= 1);
    }

    #[test]
    fn a_deep_tree_splits_and_merges_at_every_level() {
        for seed in [1, 0x9E37_79B9_7F4A_7C15, 42] {
            let tallest = run_against_model(seed, 120_000, 40_000, 1_000);
            assert!(tallest >= 3, "only {tallest} inner levels");
        }
    }

    #[test]
    fn long_members_and_equal_scores_order_bytewise() {
        let mut z = ZSet::default();
        for i in (0..2_000u32).rev() {
            let member = format!("{:0>40}", i);
            assert!(z.insert(member.as_bytes(), 1.0));
        }
        z.tree.check();
        let got: Vec<Vec<u8>> = z.iter().map(|(m, _)| m.to_vec()).collect();
        let mut want = got.clone();
        want.sort();
        assert_eq!(got, want);
        for i in 0..2_000u32 {
            assert!(z.remove(format!("{:0>40}", i).as_bytes()));
        }
        z.tree.check();
        assert!(z.is_empty() && z.tree.first().is_none() && z.tree.last().is_none());
    }

    #[test]
    fn an_update_keeps_the_order() {
        let mut z = ZSet::default();
        for i in 0..1_000u32 {
            z.insert(format!("m{i}").as_bytes(), f64::from(i));
        }
        // Small moves stay in place; large ones move across leaves.
        for i in 0..1_000u32 {
            let delta = if i % 2 == 0 { 0.5 } else { 500.0 };
            z.insert(format!("m{i}").as_bytes(), f64::from(i) + delta);
        }
        z.tree.check();
        let scores: Vec<f64> = z.iter().map(|(_, s)| s).collect();
        assert!(scores.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(scores.len(), 1_000);
    }
}
