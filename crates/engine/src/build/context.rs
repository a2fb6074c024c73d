//! The build context: the client's tarball unpacked into a folder of its own through the same
//! confined extraction as `docker cp` (so no entry or link in it reaches outside), the
//! Dockerfile read from it, and the tar streams `COPY` and `ADD` put into an image, their
//! entries renamed to the destination.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::Digest as _;
use vic_runtime::{ExtractOptions, Root, Source};

use crate::EngineError;
use crate::error::{ArchiveError, internal};

/// The largest Dockerfile read.
const DOCKERFILE_MAX: u64 = 1 << 20;

/// An unpacked build context.
#[derive(Debug)]
pub(super) struct Context {
    pub(super) root: Root,
    dir: PathBuf,
}

impl Context {
    /// Unpacks the tarball (plain or gzip-compressed) at `tar` into the new folder `dir`;
    /// returns the context and the text of its Dockerfile `dockerfile` (a path inside it).
    pub(super) fn open(
        tar: &Path,
        dir: &Path,
        dockerfile: &str,
        ids: vic_core::IdMap,
    ) -> Result<(Self, String), EngineError> {
        let opened = Self::unpack(tar, dir, dockerfile, ids);
        if opened.is_err() {
            let _ = std::fs::remove_dir_all(dir);
        }
        opened
    }

    fn unpack(
        tar: &Path,
        dir: &Path,
        dockerfile: &str,
        ids: vic_core::IdMap,
    ) -> Result<(Self, String), EngineError> {
        std::fs::create_dir(dir).map_err(|e| internal("build context", e))?;
        // The context's root is the range's root's, as a container's is: it is unpacked as
        // that root would unpack it.
        let root_id = ids.to_host(0).unwrap_or(0);
        std::os::unix::fs::chown(dir, Some(root_id), Some(root_id))
            .map_err(|e| internal("build context", e))?;
        let mut magic = [0u8; 2];
        let n = std::fs::File::open(tar)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(|e| internal("build context", e))?;
        let file = std::fs::File::open(tar).map_err(|e| internal("build context", e))?;
        let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
            Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        // Unpacked as the VCH's range owns files (never host root's), and stopped before the
        // disk's reserve: what a compressed context becomes is the client's to choose.
        let reader = crate::room::RoomReader::new(reader, dir, "the build context");
        let root = Root::open(dir)?.with_ids(ids);
        // An empty body is an empty context (a Dockerfile alone comes as a tarball too).
        if n > 0 {
            root.extract("/", reader, ExtractOptions::default())?;
        }
        let ctx = Self {
            root,
            dir: dir.to_owned(),
        };
        let name = if dockerfile.is_empty() {
            "Dockerfile"
        } else {
            dockerfile
        };
        let text = match ctx.root.read_small(name, DOCKERFILE_MAX)? {
            Some(t) => t,
            // Docker also looks for the lower-case name.
            None if name == "Dockerfile" => ctx
                .root
                .read_small("dockerfile", DOCKERFILE_MAX)?
                .ok_or_else(|| no_dockerfile(name))?,
            None => return Err(no_dockerfile(name)),
        };
        ctx.drop_ignored_build_files(name)?;
        let text = String::from_utf8(text)
            .map_err(|_| EngineError::Invalid("the Dockerfile is not UTF-8 text".into()))?;
        Ok((ctx, text))
    }

    /// The Dockerfile and `.dockerignore` leave the context when `.dockerignore` names them,
    /// as Docker does (clients leave out everything else it names themselves).
    fn drop_ignored_build_files(&self, dockerfile: &str) -> Result<(), EngineError> {
        let Some(ignore) = self.root.read_small(".dockerignore", DOCKERFILE_MAX)? else {
            return Ok(());
        };
        let patterns: Vec<String> = String::from_utf8_lossy(&ignore)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.trim_start_matches('/').to_owned())
            .collect();
        for file in [dockerfile.trim_start_matches("./"), ".dockerignore"] {
            if ignored(&patterns, file) {
                // Beneath the context's own folder by descriptor: the name is the client's.
                let dir = self.root.resolve("/", rustix::fs::OFlags::RDONLY)?;
                if !file.contains('/') {
                    let _ = rustix::fs::unlinkat(&dir, file, rustix::fs::AtFlags::empty());
                }
            }
        }
        Ok(())
    }

    /// `srcs` with their wildcards (in the last component) expanded to what the context holds.
    pub(super) fn expand(&self, srcs: &[String]) -> Result<Vec<String>, EngineError> {
        let mut out = Vec::new();
        for src in srcs {
            let clean = src.trim_start_matches("./");
            let (dir, last) = clean.rsplit_once('/').unwrap_or(("", clean));
            if !has_wildcard(last) {
                if has_wildcard(dir) {
                    return Err(EngineError::Invalid(format!(
                        "COPY/ADD source {src:?}: wildcards are supported in the last path element only"
                    )));
                }
                out.push(clean.to_owned());
                continue;
            }
            let matched: Vec<String> = self
                .root
                .names(if dir.is_empty() { "/" } else { dir })?
                .into_iter()
                .filter(|n| glob(last, n))
                .map(|n| {
                    if dir.is_empty() {
                        n
                    } else {
                        format!("{dir}/{n}")
                    }
                })
                .collect();
            if matched.is_empty() {
                return Err(EngineError::Invalid(format!(
                    "COPY failed: no source files were specified (nothing matches {src:?})"
                )));
            }
            out.extend(matched);
        }
        Ok(out)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn no_dockerfile(name: &str) -> EngineError {
    EngineError::Invalid(format!(
        "Cannot locate specified Dockerfile: {name}: give the Dockerfile's path inside the build context (-f)"
    ))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The longest pattern matched (`.dockerignore` lines, `COPY` wildcards), in bytes.
const MAX_PATTERN: usize = 4096;
/// The most components a pattern may have.
const MAX_PATTERN_DEPTH: usize = 256;

/// Whether `.dockerignore` patterns leave out `file` (the last matching pattern decides; `!`
/// keeps).
fn ignored(patterns: &[String], file: &str) -> bool {
    let mut out = false;
    for p in patterns {
        let (keep, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p.as_str()),
        };
        if glob_path(p, file) {
            out = !keep;
        }
    }
    out
}

/// A path matched component by component; `**` matches any number of components. Memoised:
/// each (pattern, path) position is decided once, however many `**` there are.
fn glob_path(pattern: &str, path: &str) -> bool {
    // The match recurses by component: a pattern deeper than any path a context holds is
    // refused whole rather than walked (a line of `**/` a million times would exhaust the
    // stack), and so is a longer one (a component's match takes length × length steps).
    if pattern.len() > MAX_PATTERN || pattern.split('/').count() > MAX_PATTERN_DEPTH {
        return false;
    }
    let p: Vec<&str> = pattern
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let s: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut memo = vec![vec![None; s.len() + 1]; p.len() + 1];
    fn go(p: &[&str], s: &[&str], pi: usize, si: usize, memo: &mut [Vec<Option<bool>>]) -> bool {
        if let Some(known) = memo[pi][si] {
            return known;
        }
        let r = match (p.get(pi), s.get(si)) {
            (None, None) => true,
            (Some(&"**"), _) => {
                go(p, s, pi + 1, si, memo) || (si < s.len() && go(p, s, pi, si + 1, memo))
            }
            (Some(pc), Some(sc)) => glob(pc, sc) && go(p, s, pi + 1, si + 1, memo),
            _ => false,
        };
        memo[pi][si] = Some(r);
        r
    }
    go(&p, &s, 0, 0, &mut memo)
}

/// One name against a pattern of `*`, `?`, `[...]`, `\x` (Go's `filepath.Match` within a
/// component). Greedy with one backtracking point, so at most length × length steps.
fn glob(pattern: &str, name: &str) -> bool {
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    let (mut pi, mut si) = (0, 0);
    // Where the last `*` was, and how much of the name it has taken.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if p.get(pi) == Some(&'*') {
            star = Some((pi + 1, si));
            pi += 1;
            continue;
        }
        if let Some(next) = one(&p, pi, s[si]) {
            pi = next;
            si += 1;
            continue;
        }
        match star {
            Some((after, taken)) => {
                pi = after;
                si = taken + 1;
                star = Some((after, taken + 1));
            }
            None => return false,
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
    }
    pi == p.len()
}

/// Whether the token of `p` at `pi` (not `*`) matches `c`: where the next token starts.
fn one(p: &[char], pi: usize, c: char) -> Option<usize> {
    match p.get(pi)? {
        '?' => Some(pi + 1),
        '\\' if pi + 1 < p.len() => (p[pi + 1] == c).then_some(pi + 2),
        '[' => {
            let end = pi + 1 + p[pi + 1..].iter().position(|&x| x == ']')?;
            let class = &p[pi + 1..end];
            let (negate, class) = match class.first() {
                Some('^' | '!') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            (hit != negate).then_some(end + 1)
        }
        x => (*x == c).then_some(pi + 1),
    }
}

/// How a copied entry's owner and mode are set.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ownership {
    /// `--chown` (container ids); `None`: root.
    pub(super) owner: Option<(u32, u32)>,
    /// `--chmod`.
    pub(super) mode: Option<u32>,
}

/// Appends `source` (as [`Source::write`] names it: its last component, or `.` for a folder's
/// content) to `out` with its entries renamed under `dest` (relative to `/`, no leading `/`):
/// a folder's content goes into `dest`, a file becomes `dest` itself.
pub(super) fn append_renamed<W: Write>(
    out: &mut tar::Builder<W>,
    source: Source,
    dest: &str,
    own: Ownership,
    scratch: &Path,
    key: &mut sha2::Sha256,
) -> Result<(), EngineError> {
    // The source's stream goes through a file: it is read back entry by entry.
    let spool = scratch.with_extension("spool");
    let file = std::fs::File::create(&spool).map_err(|e| internal("build scratch", e))?;
    let written = source.write(std::io::BufWriter::new(file));
    let renamed = written.map_err(EngineError::from).and_then(|_| {
        let file = std::fs::File::open(&spool).map_err(|e| internal("build scratch", e))?;
        rename_entries(
            out,
            vic_core::untar::archive(BufReader::new(file)),
            dest,
            own,
            true,
            key,
        )
    });
    let _ = std::fs::remove_file(&spool);
    renamed
}

/// Appends every entry of `archive` to `out` under `dest`. With `top_is_dest`, the archive's
/// first component (a file's name, a folder's `.`) is replaced by `dest`; otherwise entries
/// are put below `dest` (`ADD` of a tarball).
pub(super) fn rename_entries<W: Write, R: Read>(
    out: &mut tar::Builder<W>,
    mut archive: vic_core::untar::Archive<R>,
    dest: &str,
    own: Ownership,
    top_is_dest: bool,
    key: &mut sha2::Sha256,
) -> Result<(), EngineError> {
    let dest = dest.trim_matches('/');
    let under = |rest: &str| -> String {
        match (dest.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_owned(),
            (false, true) => dest.to_owned(),
            (false, false) => format!("{dest}/{rest}"),
        }
    };
    let rename = |name: &str| -> String {
        let name = name.trim_end_matches('/');
        if !top_is_dest {
            let name = name.trim_start_matches("./");
            return under(if name == "." { "" } else { name });
        }
        // The first component is the source's own name (`.` for a folder's content).
        match name.split_once('/') {
            Some((_, rest)) => under(rest),
            None => under(""),
        }
    };
    for entry in archive.entries().map_err(ArchiveError::NotTar)? {
        let mut entry = entry.map_err(ArchiveError::Broken)?;
        let path = entry.path().map_err(ArchiveError::Broken)?;
        let name = rename(&path.to_string_lossy());
        let kind = entry.header().entry_type();
        if name.is_empty() {
            continue; // The root folder itself: its metadata stays the image's.
        }
        let mut h = entry.header().clone();
        let (uid, gid) = own.owner.unwrap_or((0, 0));
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        if let Some(m) = own.mode {
            h.set_mode(m);
        }
        let link = entry
            .link_name()
            .map_err(ArchiveError::Broken)?
            .map(|l| l.to_string_lossy().into_owned());
        // The cache key: what is copied, where, owners and modes, not when (a context is
        // unpacked anew for every build).
        key.update(name.as_bytes());
        key.update([0, kind.as_byte()]);
        key.update(
            format!(
                "{:o} {uid} {gid} {}",
                h.mode().unwrap_or(0),
                h.size().unwrap_or(0)
            )
            .as_bytes(),
        );
        if let Some(l) = &link {
            key.update(l.as_bytes());
        }
        let res = match (kind, link) {
            (tar::EntryType::Link, Some(target)) => out.append_link(&mut h, &name, rename(&target)),
            (tar::EntryType::Symlink, Some(target)) => out.append_link(&mut h, &name, target),
            _ => out.append_data(
                &mut h,
                &name,
                KeyedReader {
                    inner: &mut entry,
                    key: &mut *key,
                },
            ),
        };
        res.map_err(|e| internal("build layer", e))?;
    }
    Ok(())
}

/// A reader that adds what passes through it to a cache key.
struct KeyedReader<'a, R> {
    inner: R,
    key: &'a mut sha2::Sha256,
}

impl<R: Read> Read for KeyedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.key.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // reads back archives the tests made

    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "a.md"));
        assert!(glob("f?le[0-9]", "file7"));
        assert!(!glob("[!a]x", "ax"));
        assert!(glob_path("**/Dockerfile", "a/b/Dockerfile"));
        assert!(glob_path("**/Dockerfile", "Dockerfile"));
        assert!(!glob_path("a/*", "a/b/c"));
        assert!(glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY"));
        // Patterns that take exponential time to a naive matcher answer at once.
        let name = "a".repeat(250);
        let stars = format!("{}b", "*a".repeat(30));
        assert!(!glob(&stars, &name));
        let deep = "**/".repeat(40) + "x";
        assert!(!glob_path(&deep, &"d/".repeat(60)));
        // Too deep or too long a pattern matches nothing, at once, without recursing.
        assert!(!glob_path(&("**/".repeat(200_000) + "x"), "a/x"));
        assert!(!glob(&"*".repeat(5000), "x"));
    }

    #[test]
    fn dockerignore_last_match_wins() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(ignored(&p(&[".dockerignore"]), ".dockerignore"));
        assert!(!ignored(&p(&["*", "!Dockerfile"]), "Dockerfile"));
        assert!(ignored(&p(&["!Dockerfile", "Docker*"]), "Dockerfile"));
    }

    #[test]
    fn entries_are_renamed_under_the_destination() {
        // Named as `Source::write` names a folder's content: `.`, `./a`, ...
        let mut src = tar::Builder::new(Vec::new());
        for (name, body) in [
            (".", None),
            ("./a", Some("1")),
            ("./d", None),
            ("./d/b", Some("2")),
        ] {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            let data = body.unwrap_or("");
            h.set_size(data.len() as u64);
            h.set_entry_type(match body {
                Some(_) => tar::EntryType::Regular,
                None => tar::EntryType::Directory,
            });
            h.set_cksum();
            src.append(&h, data.as_bytes()).unwrap();
        }
        let bytes = src.into_inner().unwrap();
        let mut out = tar::Builder::new(Vec::new());
        let own = Ownership {
            owner: Some((7, 8)),
            mode: None,
        };
        let mut key = sha2::Sha256::new();
        rename_entries(
            &mut out,
            vic_core::untar::archive(&bytes[..]),
            "/srv/app",
            own,
            true,
            &mut key,
        )
        .unwrap();
        let out = out.into_inner().unwrap();
        let mut names = Vec::new();
        for e in tar::Archive::new(&out[..]).entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(
                (e.header().uid().unwrap(), e.header().gid().unwrap()),
                (7, 8)
            );
            names.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, ["srv/app", "srv/app/a", "srv/app/d", "srv/app/d/b"]);
    }
}
