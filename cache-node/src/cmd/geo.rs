//! GEO commands on the sorted-set type: GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH,
//! GEOSEARCHSTORE and GEORADIUS / GEORADIUSBYMEMBER (and their _RO forms). A member's score is
//! its 52-bit geohash ([`geohash`]), exactly Redis's, so ZRANGE WITHSCORES agrees with Redis.

pub mod geohash;

use bytes::Bytes;
use cache_store::Value;

use super::{float_arg, int_arg, is, CmdError, CmdResult, Ctx, Notify};
use geohash::{Search, Shape};

/// `extractLongLatOrReply`.
fn lon_lat(args: &[Bytes]) -> Result<(f64, f64), CmdError> {
    let lon = float_arg(&args[0])?;
    let lat = float_arg(&args[1])?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(CmdError::Owned(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    Ok(match () {
        _ if is(arg, "m") => 1.0,
        _ if is(arg, "km") => 1000.0,
        _ if is(arg, "ft") => 0.3048,
        _ if is(arg, "mi") => 1609.34,
        _ => {
            return Err(CmdError::Msg(
                "ERR unsupported unit provided. please use M, KM, FT, MI",
            ))
        }
    })
}

/// A number option with Redis's own message for junk (`need numeric radius`...).
fn number(arg: &[u8], what: &'static str) -> Result<f64, CmdError> {
    super::parse_float(arg).ok_or(CmdError::Msg(what))
}

/// `radius unit`: (radius, meters per unit).
fn radius(args: &[Bytes]) -> Result<(f64, f64), CmdError> {
    let r = number(&args[0], "ERR need numeric radius")?;
    if r < 0.0 {
        return Err(CmdError::Msg("ERR radius cannot be negative"));
    }
    Ok((r, unit(&args[1])?))
}

pub fn geoadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut i = 2;
    let (mut nx, mut xx) = (false, false);
    while i < args.len() {
        if is(&args[i], "nx") {
            nx = true;
        } else if is(&args[i], "xx") {
            xx = true;
        } else if !is(&args[i], "ch") {
            break;
        }
        i += 1;
    }
    if !(args.len() - i).is_multiple_of(3) || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    let mut zadd: Vec<Bytes> = Vec::with_capacity(i + (args.len() - i) / 3 * 2);
    zadd.push(Bytes::from_static(b"zadd"));
    zadd.extend(args[1..i].iter().cloned());
    for point in args[i..].chunks_exact(3) {
        let (lon, lat) = lon_lat(point)?;
        let score = geohash::score_of(lon, lat).unwrap_or(0);
        zadd.push(Bytes::from(score.to_string()));
        zadd.push(point[2].clone());
    }
    super::zsets::zadd(ctx, &zadd, false)
}

/// Runs `f` on the sorted set at `key` (None when absent); WRONGTYPE for another type.
fn with_zset<R>(
    ctx: &Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&cache_store::ZSet) -> R,
) -> Result<Option<R>, CmdError> {
    super::read_value(ctx, key, Value::as_zset, f)
}

pub fn geodist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let to_meter = match args.len() {
        5 => unit(&args[4])?,
        4 => 1.0,
        _ => return Err(CmdError::Syntax),
    };
    let scores = with_zset(ctx, &args[1], |z| {
        Some((z.score(&args[2])?, z.score(&args[3])?))
    })?
    .flatten();
    match scores {
        None => ctx.out.null(),
        Some((a, b)) => {
            let (lon1, lat1) = geohash::decode_score(a);
            let (lon2, lat2) = geohash::decode_score(b);
            let d = geohash::distance(lon1, lat1, lon2, lat2) / to_meter;
            ctx.out.bulk(geohash::format_distance(d).as_bytes());
        }
    }
    Ok(())
}

fn member_scores(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Vec<Option<f64>>, CmdError> {
    Ok(with_zset(ctx, &args[1], |z| {
        args[2..].iter().map(|m| z.score(m)).collect::<Vec<_>>()
    })?
    .unwrap_or_else(|| vec![None; args.len() - 2]))
}

pub fn geohash(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let scores = member_scores(ctx, args)?;
    ctx.out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => ctx.out.bulk(geohash::geohash_string(s).as_bytes()),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// A coordinate reply: a bulk string in RESP2, a double in RESP3 (Redis's
/// `addReplyHumanLongDouble`).
fn coord(ctx: &mut Ctx<'_>, v: f64) {
    let text = geohash::format_coord(v);
    if ctx.out.resp3() {
        ctx.out
            .buf
            .extend_from_slice(format!(",{text}\r\n").as_bytes());
    } else {
        ctx.out.bulk(text.as_bytes());
    }
}

pub fn geopos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let scores = member_scores(ctx, args)?;
    ctx.out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => {
                let (lon, lat) = geohash::decode_score(s);
                ctx.out.array(2);
                coord(ctx, lon);
                coord(ctx, lat);
            }
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

/// Which command of the search family, as Redis's `georadiusGeneric` flags.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Radius { ro: bool },
    RadiusByMember { ro: bool },
    Search,
    SearchStore,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    None,
    Asc,
    Desc,
}

/// One point found.
struct Found {
    member: Vec<u8>,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// GEORADIUS, GEORADIUSBYMEMBER, GEOSEARCH and GEOSEARCHSTORE (and the _RO forms).
pub fn search(ctx: &mut Ctx<'_>, args: &[Bytes], variant: Variant) -> CmdResult {
    let src = if variant == Variant::SearchStore {
        &args[2]
    } else {
        &args[1]
    };
    // The center, when it is a member, is read with the points below; check the type first.
    let exists = with_zset(ctx, src, |_| ())?.is_some();
    let member_xy = |ctx: &Ctx<'_>, m: &[u8]| -> Result<(f64, f64), CmdError> {
        with_zset(ctx, src, |z| z.score(m))?
            .flatten()
            .map(geohash::decode_score)
            .ok_or(CmdError::Msg("ERR could not decode requested zset member"))
    };
    let mut center: Option<(f64, f64)> = None;
    let mut shape: Option<(Shape, f64)> = None;
    let mut store: Option<Bytes> = None;
    let mut storedist = false;
    let base = match variant {
        Variant::Radius { .. } => {
            center = Some(lon_lat(&args[2..4])?);
            let (r, conv) = radius(&args[4..6])?;
            shape = Some((Shape::Radius(r), conv));
            6
        }
        Variant::RadiusByMember { .. } => {
            if exists {
                center = Some(member_xy(ctx, &args[2])?);
                let (r, conv) = radius(&args[3..5])?;
                shape = Some((Shape::Radius(r), conv));
            }
            5
        }
        Variant::Search => 2,
        Variant::SearchStore => {
            store = Some(args[1].clone());
            3
        }
    };
    let is_search = matches!(variant, Variant::Search | Variant::SearchStore);
    let nostore = matches!(
        variant,
        Variant::Radius { ro: true } | Variant::RadiusByMember { ro: true }
    );
    let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut order = Order::None;
    let mut count: i64 = 0;
    let opts = &args[base..];
    let mut i = 0;
    while i < opts.len() {
        let a = &opts[i];
        let rem = opts.len() - i - 1;
        if is(a, "withdist") {
            withdist = true;
        } else if is(a, "withhash") {
            withhash = true;
        } else if is(a, "withcoord") {
            withcoord = true;
        } else if is(a, "any") {
            any = true;
        } else if is(a, "asc") {
            order = Order::Asc;
        } else if is(a, "desc") {
            order = Order::Desc;
        } else if is(a, "count") && rem >= 1 {
            count = int_arg(&opts[i + 1])?;
            if count <= 0 {
                return Err(CmdError::Msg("ERR COUNT must be > 0"));
            }
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && rem >= 1 && !nostore && !is_search {
            store = Some(opts[i + 1].clone());
            storedist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && variant == Variant::SearchStore {
            storedist = true;
        } else if is(a, "frommember") && rem >= 1 && is_search && !fromloc {
            if exists {
                center = Some(member_xy(ctx, &opts[i + 1])?);
            }
            frommember = true;
            i += 1;
        } else if is(a, "fromlonlat") && rem >= 2 && is_search && !frommember {
            center = Some(lon_lat(&opts[i + 1..i + 3])?);
            fromloc = true;
            i += 2;
        } else if is(a, "byradius") && rem >= 2 && is_search && !bybox {
            let (r, conv) = radius(&opts[i + 1..i + 3])?;
            shape = Some((Shape::Radius(r), conv));
            byradius = true;
            i += 2;
        } else if is(a, "bybox") && rem >= 3 && is_search && !byradius {
            let w = number(&opts[i + 1], "ERR need numeric width")?;
            let h = number(&opts[i + 2], "ERR need numeric height")?;
            if h < 0.0 || w < 0.0 {
                return Err(CmdError::Msg("ERR height or width cannot be negative"));
            }
            shape = Some((Shape::Box(w, h), unit(&opts[i + 3])?));
            bybox = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if store.is_some() && (withdist || withhash || withcoord) {
        return Err(CmdError::Owned(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if variant == Variant::SearchStore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        )));
    }
    let name = String::from_utf8_lossy(&args[0]);
    if is_search && !(frommember || fromloc) {
        return Err(CmdError::Owned(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if is_search && !(byradius || bybox) {
        return Err(CmdError::Owned(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if any && count == 0 {
        return Err(CmdError::Msg(
            "ERR the ANY argument requires COUNT argument",
        ));
    }
    let (Some((lon, lat)), Some((shape, conversion)), true) = (center, shape, exists) else {
        match store {
            Some(dst) => super::store_result(ctx, &dst, 0, Value::new_zset(), Notify::ZSET, ""),
            None => ctx.out.array(0),
        }
        return Ok(());
    };
    if count != 0 && order == Order::None && !any {
        order = Order::Asc;
    }
    let s = Search {
        lon,
        lat,
        shape,
        conversion,
    };
    let limit = if any { count as usize } else { 0 };
    let mut found = with_zset(ctx, src, |z| points(z, &s, limit))?.unwrap_or_default();
    if found.is_empty() && store.is_none() {
        ctx.out.array(0);
        return Ok(());
    }
    let returned = if count > 0 {
        found.len().min(count as usize)
    } else {
        found.len()
    };
    if order != Order::None {
        let desc = order == Order::Desc;
        let cmp = |a: &Found, b: &Found| {
            let c = a
                .dist
                .partial_cmp(&b.dist)
                .unwrap_or(std::cmp::Ordering::Equal);
            if desc {
                c.reverse()
            } else {
                c
            }
        };
        if returned == found.len() {
            found.sort_by(cmp);
        } else {
            // Redis sorts only the first COUNT with its partial quicksort.
            super::sort::pqsort::pqsort(&mut found, &cmp, 0, returned as i64 - 1);
        }
    }
    found.truncate(returned);
    for f in &mut found {
        f.dist /= conversion;
    }
    let Some(dst) = store else {
        let extra = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
        ctx.out.array(found.len());
        for f in &found {
            if extra > 0 {
                ctx.out.array(extra + 1);
            }
            ctx.out.bulk(&f.member);
            if withdist {
                ctx.out.bulk(geohash::format_distance(f.dist).as_bytes());
            }
            if withhash {
                ctx.out.int(f.score as i64);
            }
            if withcoord {
                ctx.out.array(2);
                coord(ctx, f.lon);
                coord(ctx, f.lat);
            }
        }
        return Ok(());
    };
    let mut z = cache_store::ZSet::default();
    for f in &found {
        z.insert(&f.member, if storedist { f.dist } else { f.score });
    }
    let event = if is_search {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    super::store_result(
        ctx,
        &dst,
        found.len(),
        Value::from_zset(z),
        Notify::ZSET,
        event,
    );
    Ok(())
}

/// The members inside the shape, box by box in Redis's order (`membersOfAllNeighbors`),
/// stopping at `limit` (ANY) when non-zero.
fn points(z: &cache_store::ZSet, s: &Search, limit: usize) -> Vec<Found> {
    let boxes = geohash::areas(s);
    let mut out = Vec::new();
    // Redis's `last_processed`: 0 (the centre box) doubles as "none yet", so a neighbour
    // equal to the centre is scanned again, as there.
    let mut last = 0;
    for (i, b) in boxes.iter().enumerate() {
        if b.bits == 0 && b.step == 0 {
            continue;
        }
        if last != 0 && boxes[last] == *b {
            continue;
        }
        if limit > 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::box_scores(*b);
        let (min, max) = (min as f64, max as f64);
        let start = z.tree.count_while(|score, _| score < min);
        let mut cur = z.tree.at(start);
        while let Some(id) = cur {
            let (member, score) = z.tree.entry(id);
            if score >= max {
                break;
            }
            let (lon, lat) = geohash::decode_score(score);
            if let Some(dist) = geohash::within(s, lon, lat) {
                out.push(Found {
                    member: member.to_vec(),
                    score,
                    lon,
                    lat,
                    dist,
                });
            }
            if limit > 0 && out.len() >= limit {
                break;
            }
            cur = z.tree.next(id);
        }
        last = i;
    }
    out
}
