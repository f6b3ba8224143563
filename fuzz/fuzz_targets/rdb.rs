//! The RDB codec on arbitrary bytes: as a RESTORE payload (with a valid footer appended, so
//! the fuzzer gets past the checksum) and as a whole file. It never panics and never
//! allocates beyond what the input can back; a value it accepts saves and loads back to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut payload = data.to_vec();
    payload.extend_from_slice(&cache_rdb::RDB_VERSION.to_le_bytes());
    let crc = cache_rdb::crc64::crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    if let Ok(value) = cache_rdb::restore(&payload) {
        let dumped = cache_rdb::dump(&value, true);
        let again = cache_rdb::restore(&dumped).expect("our own payload loads");
        assert_eq!(cache_rdb::dump(&again, true), dumped);
    }
    let mut file = b"REDIS0010".to_vec();
    file.extend_from_slice(data);
    if let Ok(mut reader) = cache_rdb::Reader::new(&file) {
        while let Ok(Some(_)) = reader.next_record() {}
    }
});
