#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = koogallery_core::fuzzing::parse_agents_usage(data);
});
