//! include/cloudsync.h must be exactly what cbindgen generates from the sources.
//! Regenerate with `UPDATE_HEADER=1 cargo test --test header`.

#[test]
fn header_is_fresh() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new().with_crate(dir).with_config(config).generate().expect("cbindgen failed");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = format!("{dir}/include/cloudsync.h");
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == generated,
        "include/cloudsync.h is stale: run `UPDATE_HEADER=1 cargo test --test header` and commit it"
    );
}
