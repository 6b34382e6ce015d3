#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = koogallery_core::fuzzing::aes_round_trip(data);
});
