//! Generates the event types from `proto/` with prost. protoc comes from the
//! protoc-bin-vendored crate, so nothing needs to be installed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not `env!` (compile time): a build script compiled in
    // one checkout and reused from a copied target directory must still read
    // the proto files of the checkout being built.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files: Vec<PathBuf> =
        ["envelope", "report", "case", "kpi"].iter().map(|f| root.join(format!("gridwork/{f}/v1/{f}.proto"))).collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;
    prost_build::Config::new().protoc_executable(protoc).compile_protos(&files, &[root, well_known])?;
    Ok(())
}
