#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = koogallery_core::fuzzing::agents_stream(data);
});
