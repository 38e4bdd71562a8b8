//! Stamps the git revision into `build_info{revision}`; "unknown" outside a checkout.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OBS_REVISION");
    let revision = std::env::var("OBS_REVISION").ok().or_else(|| {
        let output = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    });
    if let Ok(output) = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
    {
        let git_dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !git_dir.is_empty() {
            println!("cargo:rerun-if-changed={git_dir}/HEAD");
            println!("cargo:rerun-if-changed={git_dir}/refs/heads");
        }
    }
    println!(
        "cargo:rustc-env=OBS_REVISION={}",
        revision
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
}
