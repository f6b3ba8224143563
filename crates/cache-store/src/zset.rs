//! Sorted sets: a member→score table plus a skip list with spans (Redis's `zskiplist`), so
//! rank, range-by-score and range-by-lex are O(log n).
//!
//! The skip list lives in an arena (`Vec<Node>` with a free list, indices instead of
//! pointers): no `unsafe`, and a node is one slot of the arena plus one allocation for the member.

use std::cmp::Ordering;

use indexmap::IndexMap;

const MAX_LEVEL: usize = 32;
const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

#[derive(Debug, Clone, Copy)]
struct Level {
    forward: u32,
    span: u32,
}

/// Levels kept inside the node: with p = 1/4, 99.6% of nodes need no more, so a search
/// touches one cache line per node instead of chasing a pointer to a level array.
const INLINE_LEVELS: usize = 4;

const EMPTY_LEVEL: Level = Level {
    forward: NIL,
    span: 0,
};

/// One element: exactly one cache line (64 bytes, 64-aligned), with the score and the levels a
/// search reads first, so a step of a search costs one memory miss, not two.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct Node {
    score: f64,
    inline: [Level; INLINE_LEVELS],
    backward: u32,
    /// Index in [`SkipList::tall`] of the levels above `INLINE_LEVELS` (rare, and the
    /// header's), or `NIL`.
    tall: u32,
    member: Box<[u8]>,
}

const _: () = assert!(std::mem::size_of::<Node>() == 64);

impl Node {
    fn new(score: f64, member: Box<[u8]>) -> Node {
        Node {
            score,
            inline: [EMPTY_LEVEL; INLINE_LEVELS],
            backward: NIL,
            tall: NIL,
            member,
        }
    }
}

/// Orders (score, member) pairs as Redis does: by score, then bytewise by member.
fn cmp(score_a: f64, member_a: &[u8], score_b: f64, member_b: &[u8]) -> Ordering {
    score_a
        .partial_cmp(&score_b)
        .unwrap_or(Ordering::Equal)
        .then_with(|| member_a.cmp(member_b))
}

/// An order-statistics skip list of (score, member).
#[derive(Debug, Clone)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Upper levels of tall nodes, by `Node::tall`; `tall_free` lists reusable slots.
    tall: Vec<Vec<Level>>,
    tall_free: Vec<u32>,
    tail: u32,
    level: usize,
    len: usize,
    rng: u64,
}

impl Default for SkipList {
    fn default() -> Self {
        let mut head = Node::new(0.0, Box::default());
        head.tall = 0;
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            tall: vec![vec![EMPTY_LEVEL; MAX_LEVEL - INLINE_LEVELS]],
            tall_free: Vec::new(),
            tail: NIL,
            level: 1,
            len: 0,
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }
}

/// A position in the list: pass to [`SkipList::entry`], [`SkipList::next`], [`SkipList::prev`].
pub type NodeId = u32;

impl SkipList {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            // p = 1/4 per extra level, as Redis.
            if self.rng & 3 != 0 || level >= MAX_LEVEL {
                return level;
            }
            level += 1;
        }
    }

    fn level(&self, x: u32, i: usize) -> &Level {
        let node = &self.nodes[x as usize];
        if i < INLINE_LEVELS {
            &node.inline[i]
        } else {
            &self.tall[node.tall as usize][i - INLINE_LEVELS]
        }
    }

    fn fwd(&self, x: u32, i: usize) -> u32 {
        self.level(x, i).forward
    }

    fn span(&self, x: u32, i: usize) -> u32 {
        self.level(x, i).span
    }

    fn level_mut(&mut self, x: u32, i: usize) -> &mut Level {
        let node = &mut self.nodes[x as usize];
        if i < INLINE_LEVELS {
            &mut node.inline[i]
        } else {
            &mut self.tall[node.tall as usize][i - INLINE_LEVELS]
        }
    }

    /// A slot in `tall` for a node of `height` levels, or `NIL` if it needs none.
    fn alloc_tall(&mut self, height: usize) -> u32 {
        if height <= INLINE_LEVELS {
            return NIL;
        }
        let levels = vec![EMPTY_LEVEL; height - INLINE_LEVELS];
        match self.tall_free.pop() {
            Some(i) => {
                self.tall[i as usize] = levels;
                i
            }
            None => {
                self.tall.push(levels);
                (self.tall.len() - 1) as u32
            }
        }
    }

    pub fn insert(&mut self, score: f64, member: &[u8]) {
        self.insert_boxed(score, member.into());
    }

    fn insert_boxed(&mut self, score: f64, boxed: Box<[u8]>) {
        let member: &[u8] = &boxed;
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let f = self.fwd(x, i);
                if f == NIL {
                    break;
                }
                let n = &self.nodes[f as usize];
                if cmp(n.score, &n.member, score, member) != Ordering::Less {
                    break;
                }
                rank[i] += self.span(x, i);
                x = f;
            }
            update[i] = x;
        }
        let level = self.random_level();
        if level > self.level {
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                self.level_mut(HEAD, i).span = self.len as u32;
            }
            self.level = level;
        }
        let mut node = Node::new(score, boxed);
        node.tall = self.alloc_tall(level);
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..level {
            let u = update[i];
            let forward = self.fwd(u, i);
            let span = self.span(u, i);
            *self.level_mut(id, i) = Level {
                forward,
                span: span - (rank[0] - rank[i]),
            };
            *self.level_mut(u, i) = Level {
                forward: id,
                span: (rank[0] - rank[i]) + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            self.level_mut(u, i).span += 1;
        }
        self.nodes[id as usize].backward = if update[0] == HEAD { NIL } else { update[0] };
        let next = self.fwd(id, 0);
        if next != NIL {
            self.nodes[next as usize].backward = id;
        } else {
            self.tail = id;
        }
        self.len += 1;
    }

    /// Finds (score, member): the last node before it on every level, and the node itself.
    /// With `present` (the caller knows the pair is in the list, from the member map) the
    /// node found is not compared by member: that comparison reads the member's bytes, one
    /// more cache miss per update.
    fn find(&self, score: f64, member: &[u8], present: bool) -> ([u32; MAX_LEVEL], Option<u32>) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL {
                    break;
                }
                let n = &self.nodes[f as usize];
                if cmp(n.score, &n.member, score, member) != Ordering::Less {
                    break;
                }
                x = f;
            }
            update[i] = x;
        }
        let target = self.fwd(x, 0);
        if target == NIL {
            return (update, None);
        }
        let n = &self.nodes[target as usize];
        let found = n.score == score && (present || &*n.member == member);
        debug_assert!(
            !present || &*n.member == member,
            "member not where the map says"
        );
        (update, found.then_some(target))
    }

    /// Unlinks `target` (found with `update`) and frees its slot; returns its member.
    fn unlink(&mut self, target: u32, update: &[u32; MAX_LEVEL]) -> Box<[u8]> {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            if self.fwd(u, i) == target {
                let span = self.span(u, i) + self.span(target, i) - 1;
                let forward = self.fwd(target, i);
                *self.level_mut(u, i) = Level { forward, span };
            } else {
                self.level_mut(u, i).span -= 1;
            }
        }
        let next = self.fwd(target, 0);
        let back = self.nodes[target as usize].backward;
        if next != NIL {
            self.nodes[next as usize].backward = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.fwd(HEAD, self.level - 1) == NIL {
            self.level -= 1;
        }
        let node = &mut self.nodes[target as usize];
        let member = std::mem::take(&mut node.member);
        let tall = std::mem::replace(&mut node.tall, NIL);
        if tall != NIL {
            self.tall[tall as usize] = Vec::new();
            self.tall_free.push(tall);
        }
        self.free.push(target);
        self.len -= 1;
        member
    }

    /// Removes (score, member); false if absent.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        match self.find(score, member, false) {
            (update, Some(target)) => {
                self.unlink(target, &update);
                true
            }
            (_, None) => false,
        }
    }

    /// Changes a member's score; `member` must be in the list with score `old` (as the
    /// member map says). When the member keeps its place in the order (the common case for
    /// small changes) the node is updated where it is, as Redis's `zslUpdateScore` does: one
    /// search, no unlink, no allocation.
    pub fn update_score(&mut self, old: f64, member: &[u8], new: f64) {
        let (update, Some(target)) = self.find(old, member, true) else {
            self.insert(new, member);
            return;
        };
        let back = self.nodes[target as usize].backward;
        let next = self.fwd(target, 0);
        let after_back = back == NIL || {
            let b = &self.nodes[back as usize];
            cmp(b.score, &b.member, new, member) == Ordering::Less
        };
        let before_next = next == NIL || {
            let n = &self.nodes[next as usize];
            cmp(n.score, &n.member, new, member) == Ordering::Greater
        };
        if after_back && before_next {
            self.nodes[target as usize].score = new;
            return;
        }
        let boxed = self.unlink(target, &update);
        self.insert_boxed(new, boxed);
    }

    /// How many leading elements satisfy `before` (which must hold for a prefix of the
    /// order): the index of the first element where it does not.
    pub fn count_while(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = HEAD;
        let mut index = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL {
                    break;
                }
                let n = &self.nodes[f as usize];
                if !before(n.score, &n.member) {
                    break;
                }
                index += self.span(x, i) as usize;
                x = f;
            }
        }
        index
    }

    /// The element at a 0-based index.
    pub fn at(&self, index: usize) -> Option<NodeId> {
        if index >= self.len {
            return None;
        }
        let want = index + 1;
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL || traversed + self.span(x, i) as usize > want {
                    break;
                }
                traversed += self.span(x, i) as usize;
                x = f;
            }
            if traversed == want {
                return Some(x);
            }
        }
        None
    }

    pub fn entry(&self, id: NodeId) -> (&[u8], f64) {
        let n = &self.nodes[id as usize];
        (&n.member, n.score)
    }

    pub fn next(&self, id: NodeId) -> Option<NodeId> {
        let f = self.fwd(id, 0);
        (f != NIL).then_some(f)
    }

    pub fn prev(&self, id: NodeId) -> Option<NodeId> {
        let b = self.nodes[id as usize].backward;
        (b != NIL).then_some(b)
    }

    pub fn first(&self) -> Option<NodeId> {
        self.next(HEAD)
    }

    pub fn last(&self) -> Option<NodeId> {
        (self.tail != NIL).then_some(self.tail)
    }
}

/// A sorted set: member → score, and the skip list for order.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    pub scores: IndexMap<crate::Key, f64, hashbrown::DefaultHashBuilder>,
    pub list: SkipList,
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
                    self.list.update_score(*old, member, score);
                    *old = score;
                }
                false
            }
            None => {
                self.scores.insert(member.into(), score);
                self.list.insert(score, member);
                true
            }
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.swap_remove(member) {
            Some(score) => {
                self.list.remove(score, member);
                true
            }
            None => false,
        }
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(
            self.list
                .count_while(|s, m| cmp(s, m, score, member) == Ordering::Less),
        )
    }

    /// Members in ascending order, as (member, score).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> {
        let mut cur = self.list.first();
        std::iter::from_fn(move || {
            let id = cur?;
            cur = self.list.next(id);
            Some(self.list.entry(id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_ranges_match_a_sorted_vec() {
        let mut z = ZSet::default();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        let mut x: u64 = 12345;
        for step in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let member = format!("m{}", x % 500).into_bytes();
            let score = (x % 50) as f64;
            if step % 3 == 0 {
                z.remove(&member);
                model.retain(|(_, m)| *m != member);
            } else {
                z.insert(&member, score);
                model.retain(|(_, m)| *m != member);
                model.push((score, member));
            }
        }
        model.sort_by(|a, b| cmp(a.0, &a.1, b.0, &b.1));
        assert_eq!(z.len(), model.len());
        let got: Vec<(f64, Vec<u8>)> = z.iter().map(|(m, s)| (s, m.to_vec())).collect();
        assert_eq!(got, model);
        for (i, (_, m)) in model.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            let id = z.list.at(i).unwrap();
            assert_eq!(z.list.entry(id).0, &m[..]);
        }
        let below_10 = z.list.count_while(|s, _| s < 10.0);
        assert_eq!(below_10, model.iter().filter(|(s, _)| *s < 10.0).count());
        // Walking backwards from the end visits everything in reverse.
        let mut back = Vec::new();
        let mut cur = z.list.last();
        while let Some(id) = cur {
            back.push(z.list.entry(id).0.to_vec());
            cur = z.list.prev(id);
        }
        back.reverse();
        assert_eq!(
            back,
            model.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>()
        );
    }
}
