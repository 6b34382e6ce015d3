#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = koogallery_core::fuzzing::kit_signed(data);
});
