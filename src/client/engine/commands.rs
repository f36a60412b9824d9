//! The commands the shell sends: share, get, show, remove. Each checks what it is given
//! before touching the store or the tracker, and answers the lines to print or one error.

use super::records::{key_of, partial_path, same_file};
use super::state::Saved;
use super::view::{self, escape, escape_path};
use super::{Answer, Core, Kind, Record};
use crate::metainfo::Metainfo;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Core {
    pub(super) fn share(&mut self, path: &Path, mtorrent: &Path) -> Answer {
        if mtorrent.extension().and_then(|e| e.to_str()) != Some("mtorrent") {
            return Err(format!("{} must end in .mtorrent", escape_path(mtorrent)));
        }
        let name = shareable_name(path)?;
        let trackers = self.in_use.pair_for_mtorrent();
        let info = Metainfo::of_file(path, &name, trackers)
            .map_err(|e| format!("cannot read {}: {e}", escape_path(path)))?;
        let key = key_of(&info);
        // The same content in a group is the same store entry, shared here a second way.
        let held = self.records.iter().any(|r| r.key == key);
        if self
            .records
            .iter()
            .any(|r| r.key == key && r.group.is_none())
        {
            return Err(format!(
                "{} is already shared or downloading here",
                escape(&name)
            ));
        }
        self.check_mtorrent_is_free(mtorrent, &info.to_text())?;
        fs::write(mtorrent, info.to_text())
            .map_err(|e| format!("cannot write {}: {e}", escape_path(mtorrent)))?;
        if !held {
            self.store
                .add_seed(info.file_meta(), path)
                .map_err(|e| format!("cannot open {}: {e}", escape_path(path)))?;
        }
        let pieces = info.piece_hashes.len();
        let size = info.size;
        self.records.push(Record {
            kind: Kind::Share,
            group: None,
            stopped: None,
            meta: info,
            key: key.clone(),
            mtorrent: mtorrent.into(),
            path: path.into(),
        });
        self.register(&key);
        self.lost.retain(|l| !l.is_of(mtorrent));
        self.save();
        self.notes.note(&format!(
            "share {} as {}",
            escape_path(path),
            escape_path(mtorrent)
        ));
        Ok(vec![format!(
            "shared {} ({}, {}) as {}",
            escape(&name),
            view::size(size),
            view::pieces(pieces),
            escape_path(mtorrent)
        )])
    }

    pub(super) fn get(&mut self, mtorrent: &Path, dest: &Path) -> Answer {
        let info = read_mtorrent(mtorrent)?;
        let name = escape(&info.name);
        let key = key_of(&info);
        // A failed download is tried again from the start, once its destination checks out.
        let mut retried = None;
        let mut dest = dest.to_path_buf();
        if let Some(at) = self.records.iter().position(|r| r.key == key) {
            let failed = self.store.failure(&key).is_some();
            let r = &mut self.records[at];
            if let Kind::Download { alone, .. } = &mut r.kind
                && !failed
                && alone.why().is_some()
            {
                // Its data is kept: the wait for a holder starts again.
                alone.wait_again();
                let dest = escape_path(&r.path);
                self.refresh_holders();
                return Ok(vec![format!(
                    "waiting again for a seeder of {name} (to {dest})"
                )]);
            }
            if !failed || matches!(r.kind, Kind::Share) {
                // Named as it is listed here (the .mtorrent may call the same bytes otherwise).
                let held = escape(&r.meta.name);
                return Err(format!("{held} is already shared or downloading here"));
            }
            // The same place as before (its file, or the folder it was put in) is that file.
            if dest == r.path || r.path.parent() == Some(dest.as_path()) {
                dest = r.path.clone();
            }
            retried = Some(at);
        }
        let dest = destination(&dest, &info.name)?;
        if let Some(at) = retried {
            let r = self.records.remove(at);
            self.store.discard(&r.key);
        }
        self.start_download(info, mtorrent, &dest, false, None)
            .map_err(|e| format!("cannot download to {}: {e}", escape_path(&dest)))?;
        self.lost.retain(|l| !l.is_of(mtorrent));
        self.refresh_holders();
        self.save();
        self.notes.note(&format!(
            "get {} to {}",
            escape_path(mtorrent),
            escape_path(&dest)
        ));
        Ok(vec![format!(
            "downloading {name} to {} in the background",
            escape_path(&dest)
        )])
    }

    /// Refuses to write a `.mtorrent` over a file this share did not write: another
    /// record's (whose `remove` would then remove the wrong share) or anything else.
    fn check_mtorrent_is_free(&self, mtorrent: &Path, text: &str) -> Result<(), String> {
        // Only a .mtorrent that exists can be another's to lose.
        let exists = mtorrent.exists();
        let owner = self
            .records
            .iter()
            .find(|r| exists && same_file(&r.mtorrent, mtorrent));
        if let Some(r) = owner {
            return Err(format!(
                "{} already describes {}, shared or downloading here; choose another name",
                escape_path(mtorrent),
                escape(&r.meta.name)
            ));
        }
        match fs::read(mtorrent) {
            // The same text (left by an earlier run or a removal): nothing is lost.
            Ok(old) if old == text.as_bytes() => Ok(()),
            Ok(_) => Err(format!(
                "{} already exists and is not this file's; not overwriting it",
                escape_path(mtorrent)
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot write {}: {e}", escape_path(mtorrent))),
        }
    }

    pub(super) fn show(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.records.iter().map(|r| self.line_of(r)).collect();
        lines.extend(self.lost.iter().map(|l| match l.saved.group() {
            Some((_, g)) => format!("[F] [{g}] {}: {}", l.name, l.why),
            None => format!("[F] {}: {}", l.name, l.why),
        }));
        if lines.is_empty() {
            lines.push("no downloads and nothing shared".to_string());
        }
        lines
    }

    /// One record as `show downloads` lists it (DESIGN.md, "The interactive client").
    /// A group record's name carries its group: `[g] notes.txt`, and its complete download
    /// is `[C]` (downloaded here, shared) where an upload is `[S]`.
    fn line_of(&self, r: &Record) -> String {
        let name = match &r.group {
            Some(g) => format!("[{}] {}", g.group, escape(&r.meta.name)),
            None => escape(&r.meta.name),
        };
        if let Some(why) = &r.stopped {
            return format!("[F] {name}: {why}");
        }
        if let Some(why) = self.store.failure(&r.key) {
            return format!("[F] {name}: {}", escape(&why));
        }
        let Some((bits, complete)) = self.store.progress(&r.key) else {
            return format!("[F] {name}: no longer here");
        };
        if !complete && let Some(why) = self.why_stranded(r) {
            return format!("[F] {name}: {why}");
        }
        let (rate, seeders) = match &r.kind {
            Kind::Download { rate, seeders, .. } if !complete => (rate, *seeders),
            Kind::Download { .. } if r.group.is_some() => {
                return format!("[C] {name} {}", view::size(r.meta.size));
            }
            _ => return format!("[S] {name} {}", view::size(r.meta.size)),
        };
        let total = r.meta.size;
        let held = self.bytes_held(r).min(total);
        let rate = rate.per_sec(held, Instant::now());
        let percent = (bits.count() * 100)
            .checked_div(bits.num_bits())
            .unwrap_or(100);
        let holders = self
            .trackers_silent(r)
            .unwrap_or_else(|| format!("{seeders} seeder{}", view::plural(seeders)));
        format!(
            "[D] {name} {percent}% {} {}/s ETA {} ({holders})",
            view::part_of(held, total),
            view::size(rate as u64),
            view::eta(total - held, rate),
        )
    }

    pub(super) fn remove(&mut self, mtorrent: &Path) -> Answer {
        let at = self
            .records
            .iter()
            .position(|r| r.group.is_none() && same_file(&r.mtorrent, mtorrent));
        let Some(at) = at else {
            let at = self.lost.iter().position(|l| l.is_of(mtorrent));
            let lost = at
                .map(|at| self.lost.remove(at))
                .ok_or_else(|| format!("{} is not shared by this client", escape_path(mtorrent)))?;
            // An unfinished download's partial data goes with it.
            if let Saved::Download { dest, .. } = &lost.saved {
                let _ = fs::remove_file(partial_path(dest));
            }
            self.save();
            return Ok(vec![format!("cleared {} (it was not restored)", lost.name)]);
        };
        let (r, unfinished) = self.drop_record(at, true);
        let name = escape(&r.meta.name);
        self.save();
        self.notes
            .note(&format!("remove {}", escape_path(&r.mtorrent)));
        if unfinished {
            // The .mtorrent is the user's, kept so that `get` can start again.
            return Ok(vec![format!(
                "cancelled {name} (its partial data is deleted)"
            )]);
        }
        let _ = fs::remove_file(&r.mtorrent);
        Ok(vec![format!(
            "removed {name} (the file stays at {})",
            escape_path(&r.path)
        )])
    }
}

/// The name file `path` is shared by, once it is known to be a regular file with a valid
/// name (`share` and `upload_file`).
pub(super) fn shareable_name(path: &Path) -> Result<String, String> {
    let meta =
        fs::metadata(path).map_err(|e| format!("cannot share {}: {e}", escape_path(path)))?;
    if !meta.is_file() {
        return Err(format!(
            "cannot share {}: not a regular file",
            escape_path(path)
        ));
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| crate::name::validate(n).is_ok())
        .ok_or_else(|| {
            format!(
                "cannot share {}: its name is not a valid file name",
                escape_path(path)
            )
        })?;
    Ok(name.to_string())
}

/// The most a `.mtorrent` may weigh: its hash list for a file of about 800 GiB.
const MAX_MTORRENT: u64 = 64 << 20;

/// The longest part of a bad `.mtorrent` quoted in an error.
const QUOTED: usize = 120;

/// Reads and parses the `.mtorrent` at `path`, refusing what cannot be one (not a regular
/// file, too large, not text) before reading it whole; an error quotes at most [`QUOTED`] characters of it.
fn read_mtorrent(path: &Path) -> Result<Metainfo, String> {
    let shown = escape_path(path);
    let meta = fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    // A device or a pipe has no size to check and may never end.
    if !meta.is_file() {
        return Err(format!("{shown} is not a .mtorrent: not a regular file"));
    }
    let size = meta.len();
    if size > MAX_MTORRENT {
        return Err(format!(
            "{shown} is not a .mtorrent: {} is more than one can hold",
            view::size(size)
        ));
    }
    let bytes = fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{shown} is not a .mtorrent: it is not text"))?;
    Metainfo::parse(&text).map_err(|e| {
        let why = view::excerpt(&escape(&e.to_string()), QUOTED);
        format!("{shown} is not a valid .mtorrent: {why}")
    })
}

/// Where a download of `name` to `dest` goes (into `dest` when it is a folder), checked
/// before anything is fetched: its folder exists and a file can be created there.
pub(super) fn destination(dest: &Path, name: &str) -> Result<PathBuf, String> {
    let shown = escape_path(dest);
    let dest = if dest.is_dir() {
        dest.join(name)
    } else if dest.as_os_str().to_string_lossy().ends_with('/') {
        return Err(format!("cannot download to {shown}: no such folder"));
    } else {
        dest.to_path_buf()
    };
    let shown = escape_path(&dest);
    if dest.exists() {
        return Err(format!("{shown} already exists"));
    }
    let folder = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(format!(
            "cannot download to {shown}: no such folder {}",
            escape_path(folder)
        ));
    }
    // Created and removed again: the one way to know the name and folder take a file.
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&dest)
        .map_err(|e| format!("cannot download to {shown}: {e}"))?;
    let _ = fs::remove_file(&dest);
    Ok(dest)
}
