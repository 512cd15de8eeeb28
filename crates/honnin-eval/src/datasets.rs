//! Readers for the evaluation sets: LFW (folders + `pairs.txt`), generic pair lists,
//! and dlib's face-box XML.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a dataset file or folder could not be read.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// The file or folder could not be read (missing, unreadable, or for text files not
    /// UTF-8).
    #[error("{path}: {source}")]
    Io {
        /// The file or folder, as displayed.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read, but its content does not follow the format.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file, as displayed.
        path: String,
        /// 1-based line number; 0 when the file as a whole is wrong (e.g. an LFW pair count
        /// other than the header's); in dlib XML, the 1-based number of the tag (`<`)
        /// instead.
        line: usize,
        /// What is wrong, in words.
        message: String,
    },
}

fn read(path: &Path) -> Result<String, DatasetError> {
    std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// One LFW image: the person and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfwImage {
    /// The person's folder name (`Aaron_Eckhart`): LFW's identity.
    pub person: String,
    /// The image number, `NNNN` of `<Name>_NNNN.jpg` (from 1 in LFW).
    pub number: u32,
    /// The image file.
    pub path: PathBuf,
}

/// Every image of an LFW folder (`<root>/<Name>/<Name>_NNNN.jpg`), sorted by person then number.
///
/// # Errors
/// [`DatasetError::Io`] when `root` or a person's folder cannot be listed.
pub fn lfw_images(root: &Path) -> Result<Vec<LfwImage>, DatasetError> {
    let io = |source| DatasetError::Io {
        path: root.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for person in std::fs::read_dir(root).map_err(io)? {
        let person = person.map_err(io)?;
        if !person.file_type().map_err(io)?.is_dir() {
            continue;
        }
        let name = person.file_name().to_string_lossy().to_string();
        for f in std::fs::read_dir(person.path()).map_err(io)? {
            let f = f.map_err(io)?;
            let fname = f.file_name().to_string_lossy().to_string();
            let Some(stem) = fname.strip_suffix(".jpg") else {
                continue;
            };
            let Some(num) = stem.rsplit('_').next().and_then(|n| n.parse().ok()) else {
                continue;
            };
            out.push(LfwImage {
                person: name.clone(),
                number: num,
                path: f.path(),
            });
        }
    }
    out.sort_by(|a, b| (&a.person, a.number).cmp(&(&b.person, b.number)));
    Ok(out)
}

/// Pose folder of a CFP image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CfpPose {
    /// An image of the person's `frontal` folder.
    Frontal,
    /// An image of the person's `profile` folder (about 90° yaw).
    Profile,
}

/// One CFP image (`<root>/<NNN>/{frontal,profile}/<NN>.jpg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfpImage {
    /// The person's folder name (`001`…).
    pub person: String,
    /// The pose folder the image came from.
    pub pose: CfpPose,
    /// The image file (`.jpg`, `.jpeg` or `.png`, any case).
    pub path: PathBuf,
}

/// Every image of a CFP folder, sorted by person, pose (frontal first), then file.
///
/// # Errors
/// [`DatasetError::Io`] when `root` or a pose folder cannot be listed.
pub fn cfp_images(root: &Path) -> Result<Vec<CfpImage>, DatasetError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| DatasetError::Io { path, source }
    };
    let mut out = Vec::new();
    for person in std::fs::read_dir(root).map_err(io(root))? {
        let person = person.map_err(io(root))?;
        let name = person.file_name().to_string_lossy().to_string();
        if !person.file_type().map_err(io(root))?.is_dir()
            || !name.bytes().all(|b| b.is_ascii_digit())
        {
            continue;
        }
        for (folder, pose) in [("frontal", CfpPose::Frontal), ("profile", CfpPose::Profile)] {
            let dir = person.path().join(folder);
            if !dir.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let f = f.map_err(io(&dir))?;
                let fname = f.file_name().to_string_lossy().to_lowercase();
                if fname.ends_with(".jpg") || fname.ends_with(".jpeg") || fname.ends_with(".png") {
                    out.push(CfpImage {
                        person: name.clone(),
                        pose,
                        path: f.path(),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.person, a.pose == CfpPose::Profile, &a.path).cmp(&(
            &b.person,
            b.pose == CfpPose::Profile,
            &b.path,
        ))
    });
    Ok(out)
}

/// The path of `person`'s image number `n` under an LFW root.
pub fn lfw_path(root: &Path, person: &str, n: u32) -> PathBuf {
    root.join(person).join(format!("{person}_{n:04}.jpg"))
}

/// One pair of the LFW protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfwPair {
    /// First image: (person, image number), the file given by [`lfw_path`].
    pub a: (String, u32),
    /// Second image: (person, image number).
    pub b: (String, u32),
    /// True for a genuine (same-person) pair, false for an impostor pair.
    pub same: bool,
    /// The 0-based fold (0 .. folds; LFW's `pairs.txt` has 10 folds of 300 + 300 pairs).
    pub fold: usize,
}

/// Parses LFW `pairs.txt`: a header `folds n`, then per fold `n` same-person lines
/// `name i j` and `n` different-person lines `name1 i name2 j`.
///
/// Returns the number of folds and the pairs in file order (2 · folds · n of them).
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be read; [`DatasetError::Parse`] for a
/// bad header, a line of other than 3 or 4 fields, a non-numeric image number, or a
/// pair count other than 2 · folds · n.
pub fn lfw_pairs(path: &Path) -> Result<(usize, Vec<LfwPair>), DatasetError> {
    let text = read(path)?;
    let perr = |line: usize, message: &str| DatasetError::Parse {
        path: path.display().to_string(),
        line,
        message: message.to_string(),
    };
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or_else(|| perr(1, "empty file"))?;
    let h: Vec<usize> = header
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if h.len() != 2 {
        return Err(perr(1, "expected header `folds pairs_per_side`"));
    }
    let (folds, per) = (h[0], h[1]);
    if folds == 0 || per == 0 {
        return Err(perr(1, "folds and pairs per side must be positive"));
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        let idx = out.len();
        let fold = idx / (2 * per);
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| perr(i + 1, "bad image number"))
        };
        let pair = match f.len() {
            3 => LfwPair {
                a: (f[0].to_string(), num(f[1])?),
                b: (f[0].to_string(), num(f[2])?),
                same: true,
                fold,
            },
            4 => LfwPair {
                a: (f[0].to_string(), num(f[1])?),
                b: (f[2].to_string(), num(f[3])?),
                same: false,
                fold,
            },
            _ => return Err(perr(i + 1, "expected 3 or 4 fields")),
        };
        out.push(pair);
    }
    if out.len() != folds * per * 2 {
        return Err(perr(
            0,
            &format!("expected {} pairs, found {}", folds * per * 2, out.len()),
        ));
    }
    Ok((folds, out))
}

/// One line of a generic pair list: `path_a<TAB>path_b<TAB>same|diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPair {
    /// First image, resolved against the list's folder.
    pub a: PathBuf,
    /// Second image, resolved against the list's folder.
    pub b: PathBuf,
    /// True for `same` (genuine pair), false for `diff` (impostor pair).
    pub same: bool,
}

/// Parses a pair list; relative paths are resolved against the list's folder.
/// Empty lines and lines starting with `#` are skipped.
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be read; [`DatasetError::Parse`] for a line
/// without exactly three tab-separated fields or with a third other than `same`/`diff`.
pub fn pair_list(path: &Path) -> Result<Vec<ListedPair>, DatasetError> {
    let text = read(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 3 {
            return Err(DatasetError::Parse {
                path: path.display().to_string(),
                line: i + 1,
                message: "expected path_a<TAB>path_b<TAB>same|diff".into(),
            });
        }
        let same = match f[2].trim() {
            "same" => true,
            "diff" => false,
            other => {
                return Err(DatasetError::Parse {
                    path: path.display().to_string(),
                    line: i + 1,
                    message: format!("third field must be `same` or `diff`, got `{other}`"),
                })
            }
        };
        out.push(ListedPair {
            a: base.join(f[0]),
            b: base.join(f[1]),
            same,
        });
    }
    Ok(out)
}

/// An annotated face box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GtBox {
    /// Left edge, in pixels from the image's left.
    pub left: f32,
    /// Top edge, in pixels from the image's top.
    pub top: f32,
    /// Width in pixels.
    pub width: f32,
    /// Height in pixels.
    pub height: f32,
}

/// An image with its annotated faces.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotatedImage {
    /// The image file, resolved against the XML file's folder.
    pub path: PathBuf,
    /// Its annotated faces, in file order (boxes marked `ignore='1'` dropped).
    pub boxes: Vec<GtBox>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}='");
    let key2 = format!("{name}=\"");
    let (start, quote) = if let Some(i) = tag.find(&key) {
        (i + key.len(), '\'')
    } else {
        (tag.find(&key2)? + key2.len(), '"')
    };
    let end = tag[start..].find(quote)? + start;
    Some(tag[start..end].to_string())
}

/// Parses dlib's imglab XML (`<image file=...><box top left width height/>...`).
/// Boxes marked `ignore='1'` are dropped.
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be read; [`DatasetError::Parse`] for an
/// `image` without `file`, a `box` without numeric `left`/`top`/`width`/`height`, or a
/// `box` before any `image`.
pub fn dlib_boxes(path: &Path) -> Result<Vec<AnnotatedImage>, DatasetError> {
    let text = read(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out: Vec<AnnotatedImage> = Vec::new();
    for (i, raw) in text.split('<').enumerate() {
        let tag = raw.split('>').next().unwrap_or("");
        let perr = |m: &str| DatasetError::Parse {
            path: path.display().to_string(),
            line: i,
            message: m.to_string(),
        };
        if tag.starts_with("image ") {
            let file = attr(tag, "file").ok_or_else(|| perr("image without file"))?;
            out.push(AnnotatedImage {
                path: base.join(file),
                boxes: Vec::new(),
            });
        } else if tag.starts_with("box ") {
            if attr(tag, "ignore").as_deref() == Some("1") {
                continue;
            }
            let num = |n: &str| -> Result<f32, DatasetError> {
                attr(tag, n)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| perr(&format!("box without numeric {n}")))
            };
            let b = GtBox {
                left: num("left")?,
                top: num("top")?,
                width: num("width")?,
                height: num("height")?,
            };
            out.last_mut()
                .ok_or_else(|| perr("box outside an image"))?
                .boxes
                .push(b);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("honnin-eval-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn parses_lfw_pairs_with_folds() {
        let p = tmp(
            "pairs.txt",
            "2\t1\nA\t1\t2\nB\t1\tC\t3\nD\t2\t4\nE\t1\tF\t1\n",
        );
        let (folds, pairs) = lfw_pairs(&p).unwrap();
        assert_eq!(folds, 2);
        assert_eq!(pairs.len(), 4);
        assert!(pairs[0].same && !pairs[1].same);
        assert_eq!(pairs[2].fold, 1);
        assert_eq!(pairs[1].b, ("C".to_string(), 3));
        let bad = tmp("bad.txt", "2\t1\nA\t1\t2\n");
        assert!(lfw_pairs(&bad).is_err());
    }

    #[test]
    fn parses_pair_lists_and_reports_bad_lines() {
        let p = tmp(
            "list.tsv",
            "# comment\na.jpg\tb.jpg\tsame\n\nc.jpg\t/abs/d.jpg\tdiff\n",
        );
        let v = pair_list(&p).unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].same && !v[1].same);
        assert!(v[0].a.ends_with("a.jpg") && v[0].a.is_absolute());
        assert_eq!(v[1].b, PathBuf::from("/abs/d.jpg"));
        let e = pair_list(&tmp("bad.tsv", "a.jpg b.jpg same\n")).unwrap_err();
        assert!(e.to_string().contains(":1:"), "{e}");
        assert!(pair_list(&tmp("bad2.tsv", "a\tb\tmaybe\n")).is_err());
    }

    #[test]
    fn parses_dlib_xml() {
        let p = tmp(
            "t.xml",
            "<dataset><images>\n<image file='x.jpg' width='5'>\n<box top='1' left='2' width='3' height='4'/>\n<box top='1' left='2' width='3' height='4' ignore='1'/>\n</image>\n<image file=\"y.jpg\"></image></images></dataset>",
        );
        let v = dlib_boxes(&p).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0].boxes,
            vec![GtBox {
                left: 2.0,
                top: 1.0,
                width: 3.0,
                height: 4.0
            }]
        );
        assert!(v[1].boxes.is_empty());
    }
}
