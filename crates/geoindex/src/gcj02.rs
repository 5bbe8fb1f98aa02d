//! GCJ-02 ("Mars coordinates"), the obfuscated datum of Chinese map SDKs,
//! to and from WGS-84. The forward transform is the published algorithm; the
//! inverse is computed by fixed-point iteration to well under a centimetre.

const A: f64 = 6_378_245.0;
const EE: f64 = 0.006_693_421_622_965_943;

fn outside_china(lon: f64, lat: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

fn transform_lat(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn transform_lon(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// WGS-84 → GCJ-02. Points outside China are returned unchanged.
pub fn wgs84_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    use std::f64::consts::PI;
    if outside_china(lon, lat) {
        return (lon, lat);
    }
    let dlat = transform_lat(lon - 105.0, lat - 35.0);
    let dlon = transform_lon(lon - 105.0, lat - 35.0);
    let radlat = lat / 180.0 * PI;
    let magic = 1.0 - EE * radlat.sin() * radlat.sin();
    let sqrtmagic = magic.sqrt();
    let dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrtmagic) * PI);
    let dlon = (dlon * 180.0) / (A / sqrtmagic * radlat.cos() * PI);
    (lon + dlon, lat + dlat)
}

/// GCJ-02 → WGS-84, inverted iteratively.
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    if outside_china(lon, lat) {
        return (lon, lat);
    }
    let (mut wlon, mut wlat) = (lon, lat);
    for _ in 0..30 {
        let (glon, glat) = wgs84_to_gcj02(wlon, wlat);
        let (ex, ey) = (glon - lon, glat - lat);
        wlon -= ex;
        wlat -= ey;
        if ex.abs() < 1e-10 && ey.abs() < 1e-10 {
            break;
        }
    }
    (wlon, wlat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_offset() {
        // Tiananmen, WGS-84 (116.391, 39.907): the GCJ-02 shift in Beijing is
        // about +0.0062° lon, +0.0014° lat (a widely published figure).
        let (glon, glat) = wgs84_to_gcj02(116.391, 39.907);
        assert!((glon - 116.391 - 0.0062).abs() < 0.0003, "{glon}");
        assert!((glat - 39.907 - 0.0014).abs() < 0.0003, "{glat}");
        let (wlon, wlat) = gcj02_to_wgs84(glon, glat);
        assert!((wlon - 116.391).abs() < 1e-8 && (wlat - 39.907).abs() < 1e-8);
        // Outside China nothing changes.
        assert_eq!(wgs84_to_gcj02(2.35, 48.85), (2.35, 48.85));
    }

    /// The reference points of the eviltransform project (googollee/
    /// eviltransform, its test suite: WGS-84 and GCJ-02 of points in
    /// Shanghai, Shenzhen and Beijing), to a millionth of a degree (~0.1 m).
    #[test]
    fn matches_published_reference_points_both_ways() {
        let reference = [
            // wgs lat, wgs lon, gcj lat, gcj lon
            (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
            (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
            (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
        ];
        for (wlat, wlon, glat, glon) in reference {
            let (lon, lat) = wgs84_to_gcj02(wlon, wlat);
            assert!((lon - glon).abs() < 1e-6 && (lat - glat).abs() < 1e-6, "forward ({wlat}, {wlon}): ({lat}, {lon})");
            let (lon, lat) = gcj02_to_wgs84(glon, glat);
            assert!((lon - wlon).abs() < 1e-6 && (lat - wlat).abs() < 1e-6, "inverse ({glat}, {glon}): ({lat}, {lon})");
        }
    }
}
