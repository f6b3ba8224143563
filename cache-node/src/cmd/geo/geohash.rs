//! Redis's geohash arithmetic (geohash.c, geohash_helper.c): 26-step interleaved hashes whose
//! 52 bits are a sorted-set score, the nine search boxes around a shape, the haversine
//! distance on Redis's earth radius, and the reply formats of distances and coordinates.
//! Same operations in the same order, so the same doubles come out.

pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.051_128_78;
pub const LAT_MAX: f64 = 85.051_128_78;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
const D_R: f64 = std::f64::consts::PI / 180.0;
const EARTH_RADIUS_IN_METERS: f64 = 6_372_797.560_856;
const MERCATOR_MAX: f64 = 20_037_726.37;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bits {
    pub bits: u64,
    pub step: u8,
}

impl Bits {
    const ZERO: Bits = Bits { bits: 0, step: 0 };

    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

const WGS84_LONG: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (u64::from(xlo), u64::from(ylo));
    for k in (0..5).rev() {
        x = (x | (x << S[k])) & B[k];
        y = (y | (y << S[k])) & B[k];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
        0x0000_0000_FFFF_FFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for k in 0..6 {
        x = (x | (x >> S[k])) & B[k];
        y = (y | (y >> S[k])) & B[k];
    }
    x | (y << 32)
}

/// `geohashEncode`: None outside the WGS84 limits or the given ranges.
pub fn encode(long_range: Range, lat_range: Range, lon: f64, lat: f64, step: u8) -> Option<Bits> {
    if step > 32 || step == 0 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.min || lat > lat_range.max || lon < long_range.min || lon > long_range.max {
        return None;
    }
    let mut lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (lon - long_range.min) / (long_range.max - long_range.min);
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    Some(Bits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Bits> {
    encode(WGS84_LONG, WGS84_LAT, lon, lat, step)
}

/// The score of a point: its 26-step hash as 52 bits.
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode_wgs84(lon, lat, STEP_MAX).map(align52)
}

pub fn align52(hash: Bits) -> u64 {
    hash.bits << (52 - u32::from(hash.step) * 2)
}

pub fn decode(long_range: Range, lat_range: Range, hash: Bits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    Some(Area {
        latitude: Range {
            min: lat_range.min + (f64::from(ilato) * 1.0 / div) * lat_scale,
            max: lat_range.min + ((f64::from(ilato) + 1.0) * 1.0 / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (f64::from(ilono) * 1.0 / div) * long_scale,
            max: long_range.min + ((f64::from(ilono) + 1.0) * 1.0 / div) * long_scale,
        },
    })
}

/// The (longitude, latitude) a score stands for: the centre of its cell.
pub fn decode_score(score: f64) -> (f64, f64) {
    let hash = Bits {
        bits: score as u64,
        step: STEP_MAX,
    };
    let Some(area) = decode(WGS84_LONG, WGS84_LAT, hash) else {
        return (0.0, 0.0);
    };
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// GEOHASH's 11-character string (standard geohash, latitude -90..90).
pub fn geohash_string(score: f64) -> String {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let bits = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        lon,
        lat,
        26,
    )
    .map_or(0, |h| h.bits);
    (0..11)
        .map(|i| {
            let idx = if i == 10 {
                0
            } else {
                (bits >> (52 - (i + 1) * 5)) & 0x1f
            };
            ALPHABET[idx as usize] as char
        })
        .collect()
}

/// `geohash_move_x` / `geohash_move_y`: one cell along the axis whose bits `mask` selects
/// (odd bits: longitude, even bits: latitude), wrapping around.
fn move_axis(hash: &mut Bits, d: i8, mask: u64) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let other = !mask;
    let mut v = hash.bits & mask;
    let keep = hash.bits & other;
    let zz = other.checked_shr(shift).unwrap_or(0);
    if d > 0 {
        v = v.wrapping_add(zz + 1);
    } else {
        v |= zz;
        v = v.wrapping_sub(zz + 1);
    }
    v &= mask.checked_shr(shift).unwrap_or(0);
    hash.bits = v | keep;
}

fn moved(hash: Bits, dx: i8, dy: i8) -> Bits {
    let mut h = hash;
    move_axis(&mut h, dx, 0xaaaa_aaaa_aaaa_aaaa);
    move_axis(&mut h, dy, 0x5555_5555_5555_5555);
    h
}

/// What is searched: a circle (radius) or a box (width, height), in the unit's meters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Radius(f64),
    Box(f64, f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    pub lon: f64,
    pub lat: f64,
    pub shape: Shape,
    /// Meters per unit (M, KM, FT, MI).
    pub conversion: f64,
}

fn deg_rad(a: f64) -> f64 {
    a * D_R
}

fn rad_deg(a: f64) -> f64 {
    a / D_R
}

fn estimate_steps(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// `geohashBoundingBox`: min lon, min lat, max lon, max lat.
fn bounding_box(s: &Search) -> [f64; 4] {
    let (height, width) = match s.shape {
        Shape::Radius(r) => (s.conversion * r, s.conversion * r),
        Shape::Box(w, h) => (s.conversion * (h / 2.0), s.conversion * (w / 2.0)),
    };
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(s.lat + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(s.lat - lat_delta).cos());
    let south = s.lat < 0.0;
    [
        if south {
            s.lon - long_delta_bottom
        } else {
            s.lon - long_delta_top
        },
        s.lat - lat_delta,
        if south {
            s.lon + long_delta_bottom
        } else {
            s.lon + long_delta_top
        },
        s.lat + lat_delta,
    ]
}

/// The boxes to scan, in Redis's order (centre, N, S, E, W, NE, NW, SE, SW), useless ones
/// zeroed (skipped by the caller).
pub fn areas(s: &Search) -> [Bits; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(s);
    let radius_meters = match s.shape {
        Shape::Radius(r) => r,
        Shape::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
    } * s.conversion;
    let mut steps = estimate_steps(radius_meters, s.lat);
    let around = |steps: u8| {
        let hash = encode(WGS84_LONG, WGS84_LAT, s.lon, s.lat, steps).unwrap_or(Bits::ZERO);
        let area = decode(WGS84_LONG, WGS84_LAT, hash);
        (hash, area)
    };
    let (mut hash, mut area) = around(steps);
    let dec = |h: Bits| decode(WGS84_LONG, WGS84_LAT, h);
    let decrease = {
        let north = dec(moved(hash, 0, 1));
        let south = dec(moved(hash, 0, -1));
        let east = dec(moved(hash, 1, 0));
        let west = dec(moved(hash, -1, 0));
        north.is_some_and(|a| a.latitude.max < max_lat)
            || south.is_some_and(|a| a.latitude.min > min_lat)
            || east.is_some_and(|a| a.longitude.max < max_lon)
            || west.is_some_and(|a| a.longitude.min > min_lon)
    };
    if steps > 1 && decrease {
        steps -= 1;
        (hash, area) = around(steps);
    }
    // Order of the neighbours in Redis's struct use: N, S, E, W, NE, NW, SE, SW.
    let mut n = [
        hash,
        moved(hash, 0, 1),
        moved(hash, 0, -1),
        moved(hash, 1, 0),
        moved(hash, -1, 0),
        moved(hash, 1, 1),
        moved(hash, -1, 1),
        moved(hash, 1, -1),
        moved(hash, -1, -1),
    ];
    if let (true, Some(a)) = (steps >= 2, area) {
        // The centre box already reaches past an edge: the boxes beyond it are useless.
        let useless = [
            (a.latitude.min < min_lat, [2, 7, 8]),
            (a.latitude.max > max_lat, [1, 5, 6]),
            (a.longitude.min < min_lon, [4, 8, 6]),
            (a.longitude.max > max_lon, [3, 7, 5]),
        ];
        for (beyond, boxes) in useless {
            if beyond {
                for i in boxes {
                    n[i] = Bits::ZERO;
                }
            }
        }
    }
    n
}

/// The score range `[min, max)` of a box.
pub fn box_scores(hash: Bits) -> (u64, u64) {
    let min = align52(hash);
    let max = align52(Bits {
        bits: hash.bits + 1,
        step: hash.step,
    });
    (min, max)
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// The haversine distance in meters, as `geohashGetDistance`.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// Whether the point is inside the shape, and its distance (meters) from the centre.
pub fn within(s: &Search, lon: f64, lat: f64) -> Option<f64> {
    match s.shape {
        Shape::Radius(r) => {
            let d = distance(s.lon, s.lat, lon, lat);
            (d <= r * s.conversion).then_some(d)
        }
        Shape::Box(w, h) => {
            let (w, h) = (w * s.conversion, h * s.conversion);
            if lat_distance(lat, s.lat) > h / 2.0 {
                return None;
            }
            if distance(lon, lat, s.lon, lat) > w / 2.0 {
                return None;
            }
            Some(distance(s.lon, s.lat, lon, lat))
        }
    }
}

/// A distance as Redis prints it (`fixedpoint_d2string`, 4 decimals, half to even).
pub fn format_distance(d: f64) -> String {
    let v = (d * 10000.0).round_ties_even() as i64;
    let sign = if v < 0 { "-" } else { "" };
    let v = v.unsigned_abs();
    format!("{sign}{}.{:04}", v / 10000, v % 10000)
}

/// A coordinate as Redis's `addReplyHumanLongDouble` prints it: 17 decimals, trailing zeros
/// (and a trailing point) removed.
pub fn format_coord(v: f64) -> String {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palermo_as_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo": ZSCORE is 3479099956230698, GEOHASH
        // sqc8b49rny0, GEOPOS 13.36138933897018433 38.11555639549629859 (Redis's docs).
        let score = score_of(13.361389, 38.115556).expect("valid");
        assert_eq!(score, 3_479_099_956_230_698);
        assert_eq!(geohash_string(score as f64), "sqc8b49rny0");
        let (lon, lat) = decode_score(score as f64);
        assert_eq!(format_coord(lon), "13.36138933897018433");
        assert_eq!(format_coord(lat), "38.11555639549629859");
        let catania = score_of(15.087269, 37.502669).expect("valid");
        let (lon2, lat2) = decode_score(catania as f64);
        assert_eq!(
            format_distance(distance(lon, lat, lon2, lat2)),
            "166274.1516"
        );
    }

    #[test]
    fn out_of_range_is_refused() {
        assert_eq!(score_of(181.0, 0.0), None);
        assert_eq!(score_of(0.0, 85.06), None);
    }

    #[test]
    fn interleave_round_trips() {
        let v = interleave64(0x0123_4567, 0x89ab_cdef);
        assert_eq!(deinterleave64(v), 0x89ab_cdef_0123_4567);
    }
}
