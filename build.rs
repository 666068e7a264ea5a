//! Build script: with the `monkey` feature, the test binaries export their symbols, so a C
//! shared library they load calls grove's hooks through its PLT (tests/monkey_c_library.rs;
//! the monkey module's docs explain the flag).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_MONKEY").is_some() {
        println!("cargo:rustc-link-arg-tests=-Wl,--export-dynamic");
    }
}
