//! Links the provisioned TFLite runtime with an `$ORIGIN` rpath and puts a copy of it beside the
//! binaries cargo builds, so `cargo run`, `cargo test` and a copied binary + library all find it
//! without LD_LIBRARY_PATH. Run `scripts/provision-tflite.sh` first (the README's setup does).
use std::path::{Path, PathBuf};

fn main() {
    let target = std::env::var("TARGET").unwrap();
    let var = format!(
        "TFLITEC_PREBUILT_PATH_{}",
        target.to_uppercase().replace('-', "_")
    );
    println!("cargo:rerun-if-env-changed={var}");
    println!("cargo:rerun-if-changed=build.rs");
    // Binaries in target/<profile>/ and test binaries in target/<profile>/deps/ both resolve.
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN:$ORIGIN/..");
    let Ok(lib) = std::env::var(&var) else {
        println!("cargo:warning={var} is not set: run scripts/provision-tflite.sh {target}");
        return;
    };
    let lib = PathBuf::from(lib);
    if !lib.is_file() {
        panic!(
            "TFLite runtime {} is missing: run scripts/provision-tflite.sh {target}",
            lib.display()
        );
    }
    println!("cargo:rerun-if-changed={}", lib.display());
    // OUT_DIR = target/[<triple>/]<profile>/build/<pkg>-<hash>/out
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let profile_dir = out.ancestors().nth(3).expect("cargo layout").to_path_buf();
    for dir in [profile_dir.clone(), profile_dir.join("deps")] {
        place(&lib, &dir.join(lib.file_name().unwrap()));
    }
}

/// Hard-links (or copies) `src` to `dst` unless an identical-size file is already there.
fn place(src: &Path, dst: &Path) {
    let same = |a: &Path, b: &Path| match (a.metadata(), b.metadata()) {
        (Ok(x), Ok(y)) => x.len() == y.len() && x.modified().ok() <= y.modified().ok(),
        _ => false,
    };
    if same(src, dst) {
        return;
    }
    let _ = std::fs::create_dir_all(dst.parent().unwrap());
    let _ = std::fs::remove_file(dst);
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst)
            .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), dst.display()));
    }
}
