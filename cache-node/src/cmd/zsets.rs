//! Sorted-set commands. Ranges resolve to index ranges on the score tree in O(log n), then walk.

use bytes::Bytes;
use cache_protocol::ReplyBuf;
use cache_store::zset::NodeId;
use cache_store::{Entry, Keyspace, Locked, Value, ZSet};

use super::blocking::{parse_timeout, BlockOp};
use super::{int_arg, is, parse_float, scan_args, CmdError, CmdResult, Ctx, Notify};
use crate::Shared;

/// Members with their scores, in the order a reply lists them.
type Scored = Vec<(Vec<u8>, f64)>;

fn as_zset(e: &Entry) -> Result<&ZSet, CmdError> {
    e.value.as_zset().ok_or(CmdError::WrongType)
}

fn as_zset_mut(e: &mut Entry) -> Result<&mut ZSet, CmdError> {
    e.value.as_zset_mut().ok_or(CmdError::WrongType)
}

fn read_zset<R>(
    ctx: &Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&ZSet) -> R,
) -> Result<Option<R>, CmdError> {
    super::read_value(ctx, key, Value::as_zset, f)
}

/// A score as Redis 7.0 stores it in a (small, listpack-encoded) sorted set: -0 becomes 0.
/// So `ZADD z -0 m` and a ZUNIONSTORE with weight 0 over a negative score store 0, while the
/// non-storing ZUNION/ZINTER reply "-0" (checked against the reference).
fn stored(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

fn score_arg(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::NotFloat)
}

/// One end of a score range: `1.5`, `(1.5`, `-inf`, `+inf`.
#[derive(Clone, Copy)]
struct ScoreBound {
    value: f64,
    exclusive: bool,
}

fn score_bound(arg: &[u8]) -> Result<ScoreBound, CmdError> {
    let err = CmdError::Msg("ERR min or max is not a float");
    let (exclusive, text) = match arg.first() {
        Some(b'(') => (true, &arg[1..]),
        _ => (false, arg),
    };
    // Redis parses range ends with plain strtod (`zslParseRange`), not its strict float
    // parser: `""` and `"("` are 0, leading spaces are skipped; only trailing junk and NaN fail.
    let (value, used, _) = super::strtod(text);
    if used != text.len() || value.is_nan() {
        return Err(err);
    }
    Ok(ScoreBound { value, exclusive })
}

/// One end of a lex range: `[a`, `(a`, `-`, `+`.
#[derive(Clone)]
enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

fn lex_bound(arg: &[u8]) -> Result<LexBound, CmdError> {
    match arg {
        b"-" => Ok(LexBound::Min),
        b"+" => Ok(LexBound::Max),
        [b'[', rest @ ..] => Ok(LexBound::Incl(rest.to_vec())),
        [b'(', rest @ ..] => Ok(LexBound::Excl(rest.to_vec())),
        _ => Err(CmdError::Msg("ERR min or max not valid string range item")),
    }
}

/// Whether `m` lies strictly before the range starting at `min`.
fn before_lex_min(m: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Incl(v) => m < &v[..],
        LexBound::Excl(v) => m <= &v[..],
    }
}

/// Whether `m` is within the range ending at `max`.
fn within_lex_max(m: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Incl(v) => m <= &v[..],
        LexBound::Excl(v) => m < &v[..],
    }
}

/// A range over a sorted set, resolved to ascending indices `[start, end)`.
enum Range {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

impl Range {
    /// Ascending index range; for REV the caller passes bounds already swapped (max, min)
    /// for score/lex, and ranks counted from the end.
    fn indices(&self, z: &ZSet, rev: bool) -> (usize, usize) {
        let len = z.len();
        match self {
            Range::Rank(start, end) => {
                let n = len as i64;
                let mut s = if *start < 0 { n + start } else { *start };
                let mut e = if *end < 0 { n + end } else { *end };
                if s < 0 {
                    s = 0;
                }
                if s > e || s >= n {
                    return (0, 0);
                }
                if e >= n {
                    e = n - 1;
                }
                if rev {
                    ((n - 1 - e) as usize, (n - s) as usize)
                } else {
                    (s as usize, e as usize + 1)
                }
            }
            Range::Score(min, max) => {
                let start = z.tree.count_while(|s, _| {
                    if min.exclusive {
                        s <= min.value
                    } else {
                        s < min.value
                    }
                });
                let end = z.tree.count_while(|s, _| {
                    if max.exclusive {
                        s < max.value
                    } else {
                        s <= max.value
                    }
                });
                (start, end.max(start))
            }
            Range::Lex(min, max) => {
                let start = z.tree.count_while(|_, m| before_lex_min(m, min));
                let end = z.tree.count_while(|_, m| within_lex_max(m, max));
                (start, end.max(start))
            }
        }
    }
}

/// Collects (member, score) in `[start, end)` ascending or descending, after LIMIT.
fn collect(
    z: &ZSet,
    start: usize,
    end: usize,
    rev: bool,
    offset: usize,
    count: Option<usize>,
) -> Vec<(Vec<u8>, f64)> {
    let total = end - start;
    if offset >= total {
        return Vec::new();
    }
    let take = count.unwrap_or(usize::MAX).min(total - offset);
    let mut out = Vec::with_capacity(take.min(1024));
    let mut cur: Option<NodeId> = if rev {
        z.tree.at(end - 1 - offset)
    } else {
        z.tree.at(start + offset)
    };
    while let Some(id) = cur {
        if out.len() >= take {
            break;
        }
        let (m, s) = z.tree.entry(id);
        out.push((m.to_vec(), s));
        cur = if rev {
            z.tree.prev(id)
        } else {
            z.tree.next(id)
        };
    }
    out
}

fn reply_members(out: &mut ReplyBuf, items: &[(Vec<u8>, f64)], with_scores: bool) {
    if with_scores && out.resp3() {
        out.array(items.len());
        for (m, s) in items {
            out.array(2);
            out.bulk(m);
            out.double(*s);
        }
    } else {
        out.array(items.len() * if with_scores { 2 } else { 1 });
        for (m, s) in items {
            out.bulk(m);
            if with_scores {
                out.double(*s);
            }
        }
    }
}

pub fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes], incr_cmd: bool) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, incr_cmd);
    let mut i = 2;
    if !incr_cmd {
        while i < args.len() {
            let a = &args[i];
            if is(a, "nx") {
                nx = true;
            } else if is(a, "xx") {
                xx = true;
            } else if is(a, "gt") {
                gt = true;
            } else if is(a, "lt") {
                lt = true;
            } else if is(a, "ch") {
                ch = true;
            } else if is(a, "incr") {
                incr = true;
            } else {
                break;
            }
            i += 1;
        }
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        return Err(CmdError::Msg(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::Msg(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && pairs.len() > 2 {
        return Err(CmdError::Msg(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let mut parsed = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks(2) {
        parsed.push((score_arg(&p[0])?, &p[1][..]));
    }
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let exists = match locked.peek(db, key, now) {
        Some(e) => {
            as_zset(e)?;
            true
        }
        None => false,
    };
    if !exists && xx {
        drop(locked);
        if incr {
            ctx.out.null();
        } else {
            ctx.out.int(0);
        }
        return Ok(());
    }
    if !exists {
        locked.insert(db, key, Entry::new(Value::new_zset()), now);
    }
    let z = as_zset_mut(locked.get_mut(db, key, now).expect("present"))?;
    let (mut added, mut changed) = (0i64, 0i64);
    let mut incr_result = None;
    let mut failure = None;
    for (score, member) in parsed {
        let current = z.score(member);
        let mut next = score;
        if incr {
            // A new member takes the increment as is (so INCR -0 replies "-0", as Redis).
            next = current.map_or(score, |c| c + score);
            if next.is_nan() {
                failure = Some(CmdError::Msg("ERR resulting score is not a number (NaN)"));
                break;
            }
        }
        match current {
            Some(old) => {
                if nx || (gt && next <= old) || (lt && next >= old) {
                    continue;
                }
                if next != old {
                    z.insert(member, stored(next));
                    changed += 1;
                }
                incr_result = Some(next);
            }
            None => {
                if xx {
                    continue;
                }
                z.insert(member, stored(next));
                added += 1;
                incr_result = Some(next);
            }
        }
    }
    if !exists {
        // Only a set this command created can be left empty (all pairs refused).
        locked.remove_if_empty(db, key, now);
    }
    drop(locked);
    if let Some(e) = failure {
        return Err(e);
    }
    if added + changed > 0 {
        ctx.notify(Notify::ZSET, if incr { "zincr" } else { "zadd" }, key);
    }
    if incr {
        match incr_result {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    } else {
        ctx.out.int(if ch { added + changed } else { added });
    }
    Ok(())
}

pub fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let removed = match locked.get(db, key, now) {
        None => 0,
        Some(e) => {
            as_zset(e)?;
            let z = as_zset_mut(locked.get_mut(db, key, now).expect("present"))?;
            args[2..].iter().filter(|m| z.remove(m)).count()
        }
    };
    let deleted = locked.remove_if_empty(db, key, now);
    drop(locked);
    super::reply_removed(ctx, key, removed, deleted, Notify::ZSET, "zrem");
    Ok(())
}

pub fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match read_zset(ctx, &args[1], |z| z.score(&args[2]))?.flatten() {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let scores = read_zset(ctx, &args[1], |z| {
        args[2..].iter().map(|m| z.score(m)).collect::<Vec<_>>()
    })?
    .unwrap_or_else(|| vec![None; args.len() - 2]);
    ctx.out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

pub fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = read_zset(ctx, &args[1], |z| z.len())?.unwrap_or(0);
    ctx.out.int(n as i64);
    Ok(())
}

pub fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes], lex: bool) -> CmdResult {
    let range = if lex {
        Range::Lex(lex_bound(&args[2])?, lex_bound(&args[3])?)
    } else {
        Range::Score(score_bound(&args[2])?, score_bound(&args[3])?)
    };
    let n = read_zset(ctx, &args[1], |z| {
        let (a, b) = range.indices(z, false);
        b - a
    })?
    .unwrap_or(0);
    ctx.out.int(n as i64);
    Ok(())
}

/// What kind of range a ZRANGE-family call asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum By {
    Rank,
    Score,
    Lex,
}

struct RangeQuery {
    range: Range,
    rev: bool,
    offset: usize,
    count: Option<usize>,
    with_scores: bool,
}

/// Parses `min max [BYSCORE|BYLEX] [REV] [LIMIT o c] [WITHSCORES]` (ZRANGE's grammar) or the
/// legacy forms, which fix `by` and `rev`.
fn parse_range(
    args: &[Bytes],
    at: usize,
    mut by: By,
    mut rev: bool,
    legacy: bool,
    store: bool,
) -> Result<RangeQuery, CmdError> {
    // `limit` is whether LIMIT asked for a count other than -1: Redis rejects only that with a
    // rank range (`ZRANGE z 0 -1 LIMIT 5 -1` is a plain rank range, the offset ignored).
    let (mut offset, mut count, mut with_scores, mut limit) = (0usize, None, false, false);
    let mut by_given = false;
    let mut i = at + 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "withscores") && !store {
            with_scores = true;
        } else if is(a, "limit") && i + 2 < args.len() {
            let o = int_arg(&args[i + 1])?;
            let c = int_arg(&args[i + 2])?;
            limit = c != -1;
            if o < 0 {
                offset = usize::MAX;
            } else {
                offset = o as usize;
            }
            count = if c < 0 { None } else { Some(c as usize) };
            i += 2;
        // BYSCORE/BYLEX and REV may each appear once (Redis: a second one is a syntax error).
        } else if !legacy && !by_given && is(a, "byscore") {
            by = By::Score;
            by_given = true;
        } else if !legacy && !by_given && is(a, "bylex") {
            by = By::Lex;
            by_given = true;
        } else if !legacy && !rev && is(a, "rev") {
            rev = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if limit && by == By::Rank {
        return Err(CmdError::Msg(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if by == By::Rank {
        // LIMIT o -1 is allowed there and means nothing.
        offset = 0;
        count = None;
    }
    if with_scores && by == By::Lex {
        return Err(CmdError::Msg(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (lo, hi) = (&args[at], &args[at + 1]);
    // REV ranges name the high end first.
    let (min_arg, max_arg) = if rev && by != By::Rank {
        (hi, lo)
    } else {
        (lo, hi)
    };
    let range = match by {
        By::Rank => Range::Rank(int_arg(lo)?, int_arg(hi)?),
        By::Score => Range::Score(score_bound(min_arg)?, score_bound(max_arg)?),
        By::Lex => Range::Lex(lex_bound(min_arg)?, lex_bound(max_arg)?),
    };
    Ok(RangeQuery {
        range,
        rev,
        offset,
        count,
        with_scores,
    })
}

fn run_range(z: &ZSet, q: &RangeQuery) -> Vec<(Vec<u8>, f64)> {
    let (a, b) = q
        .range
        .indices(z, q.rev && matches!(q.range, Range::Rank(..)));
    if a >= b {
        return Vec::new();
    }
    collect(z, a, b, q.rev, q.offset, q.count)
}

pub fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes], by: By, rev: bool, legacy: bool) -> CmdResult {
    let q = parse_range(args, 2, by, rev, legacy, false)?;
    let items = read_zset(ctx, &args[1], |z| run_range(z, &q))?.unwrap_or_default();
    reply_members(ctx.out, &items, q.with_scores);
    Ok(())
}

pub fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let q = parse_range(args, 3, By::Rank, false, false, true)?;
    let (db, now) = (ctx.db(), ctx.now);
    let (dst, src) = (&args[1][..], &args[2][..]);
    let mut locked = ctx.store().lock_keys([dst, src]);
    let items = match locked.get(db, src, now) {
        Some(e) => run_range(as_zset(e)?, &q),
        None => Vec::new(),
    };
    let n = items.len();
    if n == 0 {
        locked.remove(db, dst, now);
    } else {
        let mut z = ZSet::default();
        for (m, s) in &items {
            z.insert(m, *s);
        }
        locked.insert(db, dst, Entry::new(Value::from_zset(z)), now);
    }
    drop(locked);
    ctx.notify(Notify::ZSET, "zrangestore", dst);
    ctx.out.int(n as i64);
    Ok(())
}

pub fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> CmdResult {
    let rank = read_zset(ctx, &args[1], |z| {
        z.rank(&args[2])
            .map(|r| if rev { z.len() - 1 - r } else { r })
    })?
    .flatten();
    match rank {
        Some(r) => ctx.out.int(r as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // ZINCRBY key incr member is ZADD key INCR incr member.
    let rewritten = [
        args[0].clone(),
        args[1].clone(),
        args[2].clone(),
        args[3].clone(),
    ];
    zadd(ctx, &rewritten, true)
}

/// Removes a resolved range; shared by the ZREMRANGEBY* commands.
pub fn zremrange(ctx: &mut Ctx<'_>, args: &[Bytes], by: By) -> CmdResult {
    let range = match by {
        By::Rank => Range::Rank(int_arg(&args[2])?, int_arg(&args[3])?),
        By::Score => Range::Score(score_bound(&args[2])?, score_bound(&args[3])?),
        By::Lex => Range::Lex(lex_bound(&args[2])?, lex_bound(&args[3])?),
    };
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let removed = match locked.get(db, key, now) {
        None => 0,
        Some(e) => {
            as_zset(e)?;
            let z = as_zset_mut(locked.get_mut(db, key, now).expect("present"))?;
            let (a, b) = range.indices(z, false);
            let doomed = collect(z, a, b.max(a), false, 0, None);
            for (m, _) in &doomed {
                z.remove(m);
            }
            doomed.len()
        }
    };
    let deleted = locked.remove_if_empty(db, key, now);
    drop(locked);
    if removed > 0 {
        let event = match by {
            By::Rank => "zremrangebyrank",
            By::Score => "zremrangebyscore",
            By::Lex => "zremrangebylex",
        };
        ctx.notify(Notify::ZSET, event, key);
    }
    if deleted {
        ctx.notify(Notify::GENERIC, "del", key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// Pops up to `count` lowest (or highest) members; None when the key is absent.
fn pop_members(
    locked: &mut Locked<'_>,
    db: usize,
    key: &[u8],
    now: u64,
    max: bool,
    count: usize,
) -> Result<Option<Scored>, CmdError> {
    match locked.get(db, key, now) {
        None => return Ok(None),
        Some(e) => {
            as_zset(e)?;
        }
    }
    let z = as_zset_mut(locked.get_mut(db, key, now).expect("present"))?;
    let n = count.min(z.len());
    let items = if max {
        collect(z, 0, z.len(), true, 0, Some(n))
    } else {
        collect(z, 0, z.len(), false, 0, Some(n))
    };
    for (m, _) in &items {
        z.remove(m);
    }
    locked.remove_if_empty(db, key, now);
    Ok(Some(items))
}

pub fn zpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => {
            // Redis's getPositiveLongFromObjectOrReply: one message for junk and negatives.
            let c = int_arg(&args[2])
                .ok()
                .filter(|c| *c >= 0)
                .ok_or(CmdError::Msg("ERR value is out of range, must be positive"))?;
            Some(c as usize)
        }
        _ => return Err(CmdError::Syntax),
    };
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let items =
        pop_members(&mut locked, db, key, now, max, count.unwrap_or(1))?.unwrap_or_default();
    drop(locked);
    if !items.is_empty() {
        ctx.notify(Notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    }
    // Without COUNT the reply is flat even in RESP3; with COUNT, pairs in RESP3.
    if count.is_some() {
        reply_members(ctx.out, &items, true);
    } else {
        ctx.out.array(items.len() * 2);
        for (m, s) in &items {
            ctx.out.bulk(m);
            ctx.out.double(*s);
        }
    }
    Ok(())
}

/// Serves a blocked (or first-try) ZPOP/ZMPOP on `key`.
pub fn serve(
    shared: &Shared,
    store: Keyspace<'_>,
    db: usize,
    now: u64,
    key: &[u8],
    op: &BlockOp,
    out: &mut ReplyBuf,
) -> Result<bool, CmdError> {
    let (max, count, multi) = match op {
        BlockOp::ZPop { max } => (*max, 1, false),
        BlockOp::ZMPop { max, count } => (*max, *count, true),
        _ => return Ok(false),
    };
    let mut locked = store.lock(key);
    let items = pop_members(&mut locked, db, key, now, max, count)?;
    drop(locked);
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return Ok(false);
    };
    shared.notify(
        db,
        Notify::ZSET,
        if max { "zpopmax" } else { "zpopmin" },
        key,
    );
    if multi {
        out.array(2);
        out.bulk(key);
        out.array(items.len());
        for (m, s) in &items {
            out.array(2);
            out.bulk(m);
            out.double(*s);
        }
    } else {
        out.array(3);
        out.bulk(key);
        out.bulk(&items[0].0);
        out.double(items[0].1);
    }
    Ok(true)
}

pub fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = super::mpop_args(args, 1, ("max", "min"))?;
    if !super::blocking::serve_first(ctx, &keys, &BlockOp::ZMPop { max, count })? {
        ctx.out.null_array();
    }
    Ok(())
}

pub fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> CmdResult {
    let timeout = parse_timeout(&args[args.len() - 1])?;
    let keys = args[1..args.len() - 1].to_vec();
    super::blocking::block_or_serve(ctx, keys, timeout, BlockOp::ZPop { max })
}

pub fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let timeout = parse_timeout(&args[1])?;
    let (keys, max, count) = super::mpop_args(args, 2, ("max", "min"))?;
    super::blocking::block_or_serve(ctx, keys, timeout, BlockOp::ZMPop { max, count })
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ZOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(a: Aggregate, x: f64, y: f64) -> f64 {
    match a {
        Aggregate::Sum => {
            let s = x + y;
            // inf + -inf: Redis makes it 0 rather than storing NaN.
            if s.is_nan() {
                0.0
            } else {
                s
            }
        }
        Aggregate::Min => x.min(y),
        Aggregate::Max => x.max(y),
    }
}

/// Reads the inputs (sorted sets or sets, missing = empty) and combines them. Returns the
/// result, WITHSCORES, and ZINTERCARD's LIMIT (0 = none).
///
/// As Redis's `zunionInterDiffGenericCommand`, the input keys are looked up (and type-checked)
/// before the options after them are parsed: `ZINTERCARD 1 str LIMIT -1` and
/// `ZUNION 1 str BOGUS` are WRONGTYPE errors, not option errors. `card` is ZINTERCARD: the same
/// numkeys errors as ZINTER, LIMIT allowed, WEIGHTS/AGGREGATE/WITHSCORES not.
fn combine(
    ctx: &Ctx<'_>,
    cmd: &str,
    args: &[Bytes],
    at: usize,
    op: ZOp,
    dst: Option<&[u8]>,
    card: bool,
) -> Result<(ZSet, bool, usize), CmdError> {
    let numkeys = int_arg(&args[at])?;
    if numkeys <= 0 {
        return Err(CmdError::Owned(format!(
            "ERR at least 1 input key is needed for '{cmd}' command"
        )));
    }
    let numkeys = numkeys as usize;
    let first = at + 1;
    if numkeys > args.len().saturating_sub(first) {
        return Err(CmdError::Syntax);
    }
    let keys = &args[first..first + numkeys];
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx
        .shared
        .store
        .lock_keys(keys.iter().map(|k| &k[..]).chain(dst));
    let mut inputs: Vec<Option<Scored>> = Vec::with_capacity(numkeys);
    for k in keys {
        match locked.get(db, k, now) {
            None => inputs.push(None),
            Some(e) => {
                if let Some(z) = e.value.as_zset() {
                    inputs.push(Some(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()))
                } else if let Some(s) = e.value.as_set() {
                    inputs.push(Some(s.iter().map(|m| (m.to_vec(), 1.0)).collect()))
                } else {
                    return Err(CmdError::WrongType);
                }
            }
        }
    }
    drop(locked);
    let mut weights = vec![1.0f64; numkeys];
    let mut agg = Aggregate::Sum;
    let mut with_scores = false;
    let mut limit = 0usize;
    let combining = op != ZOp::Diff && !card;
    let mut i = first + numkeys;
    while i < args.len() {
        let a = &args[i];
        if is(a, "weights") && combining && i + numkeys < args.len() {
            for (j, w) in weights.iter_mut().enumerate() {
                *w = parse_float(&args[i + 1 + j])
                    .ok_or(CmdError::Msg("ERR weight value is not a float"))?;
            }
            i += numkeys + 1;
        } else if is(a, "aggregate") && combining && i + 1 < args.len() {
            let v = &args[i + 1];
            agg = if is(v, "sum") {
                Aggregate::Sum
            } else if is(v, "min") {
                Aggregate::Min
            } else if is(v, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            i += 2;
        } else if is(a, "withscores") && dst.is_none() && !card {
            with_scores = true;
            i += 1;
        } else if is(a, "limit") && card && i + 1 < args.len() {
            let l = int_arg(&args[i + 1])
                .ok()
                .filter(|l| *l >= 0)
                .ok_or(CmdError::Msg("ERR LIMIT can't be negative"))?;
            limit = l as usize;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if op != ZOp::Diff {
        // Redis sorts the inputs by size (stable for these few) before combining, weights
        // travelling with their sets. It matters where the order does: an inter only zeroes
        // a NaN product (inf * 0) for the first input, and inf + -inf sums to 0.
        let mut order: Vec<usize> = (0..numkeys).collect();
        order.sort_by_key(|&j| inputs[j].as_ref().map_or(0, Vec::len));
        let mut taken: Vec<Option<Option<Scored>>> = inputs.into_iter().map(Some).collect();
        inputs = order
            .iter()
            .map(|&j| taken[j].take().expect("each once"))
            .collect();
        weights = order.iter().map(|&j| weights[j]).collect();
    }
    let mut result = ZSet::default();
    let weighted = |v: f64, w: f64| {
        let r = v * w;
        if r.is_nan() {
            0.0
        } else {
            r
        }
    };
    match op {
        ZOp::Union => {
            for (input, &w) in inputs.iter().zip(&weights) {
                for (m, s) in input.iter().flatten() {
                    let v = weighted(*s, w);
                    let next = match result.score(m) {
                        Some(old) => aggregate(agg, old, v),
                        None => v,
                    };
                    result.insert(m, next);
                }
            }
        }
        ZOp::Inter => {
            if inputs.iter().all(Option::is_some) {
                let maps: Vec<hashbrown::HashMap<&[u8], f64>> = inputs
                    .iter()
                    .flatten()
                    .map(|v| v.iter().map(|(m, s)| (&m[..], *s)).collect())
                    .collect();
                if let Some(first_input) = inputs[0].as_ref() {
                    'member: for (m, s) in first_input {
                        let mut acc = weighted(*s, weights[0]);
                        for (j, map) in maps.iter().enumerate().skip(1) {
                            match map.get(&m[..]) {
                                // Redis zeroes a NaN product (inf * 0) only for the first
                                // input; here it reaches the aggregate: SUM makes it 0, MIN and
                                // MAX keep the other side.
                                Some(v) => acc = aggregate(agg, acc, *v * weights[j]),
                                None => continue 'member,
                            }
                        }
                        result.insert(m, acc);
                    }
                }
            }
        }
        ZOp::Diff => {
            if let Some(Some(first_input)) = inputs.first() {
                let others: Vec<hashbrown::HashSet<&[u8]>> = inputs[1..]
                    .iter()
                    .flatten()
                    .map(|v| v.iter().map(|(m, _)| &m[..]).collect())
                    .collect();
                for (m, s) in first_input {
                    if !others.iter().any(|o| o.contains(&m[..])) {
                        result.insert(m, *s);
                    }
                }
            }
        }
    }
    Ok((result, with_scores, limit))
}

pub fn zsetop(ctx: &mut Ctx<'_>, args: &[Bytes], op: ZOp) -> CmdResult {
    let cmd = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let (z, with_scores, _) = combine(ctx, &cmd, args, 1, op, None, false)?;
    let items: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
    reply_members(ctx.out, &items, with_scores);
    Ok(())
}

pub fn zsetop_store(ctx: &mut Ctx<'_>, args: &[Bytes], op: ZOp) -> CmdResult {
    let cmd = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let dst = &args[1][..];
    let (mut z, _, _) = combine(ctx, &cmd, args, 2, op, Some(dst), false)?;
    // (ZSet::insert keeps an equal score, and -0 == 0: rebuild to store 0.)
    if z.iter().any(|(_, s)| s == 0.0 && s.is_sign_negative()) {
        let mut fixed = ZSet::default();
        for (m, s) in z.iter() {
            fixed.insert(m, stored(s));
        }
        z = fixed;
    }
    let event = match op {
        ZOp::Union => "zunionstore",
        ZOp::Inter => "zinterstore",
        ZOp::Diff => "zdiffstore",
    };
    let n = z.len();
    super::store_result(ctx, dst, n, Value::from_zset(z), Notify::ZSET, event);
    Ok(())
}

pub fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Redis parses ZINTERCARD with ZINTER's code (not SINTERCARD's): its numkeys errors are
    // "at least 1 input key is needed" and a syntax error, and keys are checked before LIMIT.
    let (z, _, limit) = combine(ctx, "zintercard", args, 1, ZOp::Inter, None, true)?;
    let n = if limit > 0 {
        z.len().min(limit)
    } else {
        z.len()
    };
    ctx.out.int(n as i64);
    Ok(())
}

pub fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(super::random_count(&args[2], false)?),
        4 if is(&args[3], "withscores") => Some(super::random_count(&args[2], true)?),
        _ => return Err(CmdError::Syntax),
    };
    let with_scores = args.len() == 4;
    let picked = read_zset(ctx, &args[1], |z| {
        super::random_indices(z.len(), count.unwrap_or(1))
            .into_iter()
            .map(|i| {
                let (m, s) = z.scores.get_index(i).expect("in range");
                (m.to_vec(), *s)
            })
            .collect::<Vec<_>>()
    })?;
    match (count, picked) {
        (None, None) => ctx.out.null(),
        (None, Some(p)) => ctx.out.bulk(&p[0].0),
        (Some(_), p) => reply_members(ctx.out, &p.unwrap_or_default(), with_scores),
    }
    Ok(())
}

pub fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let scan = scan_args(args, 2)?;
    let page = read_zset(ctx, &args[1], |z| {
        // Small sorted sets come back whole and in score order, as Redis's listpack does.
        if scan.cursor == 0 && z.len() <= 128 {
            let items = z
                .iter()
                .filter(|(m, _)| scan.matches(m))
                .flat_map(|(m, s)| [m.to_vec(), cache_protocol::format_score(s).into_bytes()])
                .collect();
            return (0, items);
        }
        super::scan_indexmap(z.scores.len(), scan.cursor, scan.count, |i| {
            let (m, s) = z.scores.get_index(i).expect("in range");
            scan.matches(m)
                .then(|| vec![m.to_vec(), cache_protocol::format_score(*s).into_bytes()])
        })
    })?;
    super::reply_scan(ctx, page.unwrap_or((0, Vec::new())));
    Ok(())
}
