#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pollster::block_on(koogallery_core::fuzzing::license(data));
});
