//! Stamps the git revision into `build_info{revision}` ("unknown" outside a checkout), and
//! takes the few Swagger UI files `/docs` serves out of the vendored release archive, gzipped:
//! every role embeds them, and compressed they weigh 0.5 MB instead of 1.8 MB per binary.
use std::io::Read as _;
use std::path::Path;
use std::process::Command;

/// What the page needs. The archive also holds source maps and other bundles (≈11 MB) that
/// would only make every role's binary and image bigger.
const SWAGGER_UI_FILES: [&str; 5] = [
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-ui.css",
    "index.css",
    "favicon-32x32.png",
];

fn main() {
    stamp_revision();
    if let Err(error) = extract_swagger_ui() {
        panic!("cannot extract Swagger UI from the vendored archive: {error}");
    }
}

fn extract_swagger_ui() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::var("OUT_DIR")?;
    let target = Path::new(&out_dir).join("swagger-ui");
    std::fs::create_dir_all(&target)?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(
        utoipa_swagger_ui_vendored::SWAGGER_UI_VENDORED,
    ))?;
    for name in SWAGGER_UI_FILES {
        let index = (0..archive.len())
            .find(|&i| {
                archive
                    .name_for_index(i)
                    .is_some_and(|path| path.ends_with(&format!("/dist/{name}")))
            })
            .ok_or_else(|| format!("{name} is not in the archive"))?;
        let mut bytes = Vec::new();
        archive.by_index(index)?.read_to_end(&mut bytes)?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gzip, &bytes)?;
        std::fs::write(target.join(format!("{name}.gz")), gzip.finish()?)?;
    }
    Ok(())
}

fn stamp_revision() {
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
