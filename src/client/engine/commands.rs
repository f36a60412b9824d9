//! The commands the shell sends: share, get, show, remove. Each checks what it is given
//! before touching the store or the tracker, and answers the lines to print or one error.

use super::records::key_of;
use super::{Answer, Core, Kind, Record};
use crate::metainfo::Metainfo;
use std::fs;
use std::path::Path;

impl Core {
    pub(super) fn share(&mut self, path: &Path, mtorrent: &Path) -> Answer {
        if mtorrent.extension().and_then(|e| e.to_str()) != Some("mtorrent") {
            return Err(format!("{} must end in .mtorrent", mtorrent.display()));
        }
        let meta =
            fs::metadata(path).map_err(|e| format!("cannot share {}: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!(
                "cannot share {}: not a regular file",
                path.display()
            ));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| crate::name::validate(n).is_ok())
            .ok_or_else(|| {
                format!(
                    "cannot share {}: its name is not a valid file name",
                    path.display()
                )
            })?
            .to_string();
        let trackers = self.in_use.pair_for_mtorrent();
        let info = Metainfo::of_file(path, &name, trackers)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let key = key_of(&info);
        if self.records.iter().any(|r| r.key == key) {
            return Err(format!("{name} is already shared or downloading here"));
        }
        fs::write(mtorrent, info.to_text())
            .map_err(|e| format!("cannot write {}: {e}", mtorrent.display()))?;
        self.store
            .add_seed(info.file_meta(), path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let pieces = info.piece_hashes.len();
        let size = info.size;
        self.records.push(Record {
            kind: Kind::Share,
            meta: info,
            key: key.clone(),
            mtorrent: mtorrent.into(),
            path: path.into(),
        });
        self.register(&key);
        self.save();
        self.notes.note(&format!(
            "share {} as {}",
            path.display(),
            mtorrent.display()
        ));
        Ok(vec![format!(
            "shared {name} ({size} bytes, {pieces} pieces) as {}",
            mtorrent.display()
        )])
    }

    pub(super) fn get(&mut self, mtorrent: &Path, dest: &Path) -> Answer {
        let text = fs::read_to_string(mtorrent)
            .map_err(|e| format!("cannot read {}: {e}", mtorrent.display()))?;
        let info = Metainfo::parse(&text)
            .map_err(|e| format!("{} is not a valid .mtorrent: {e}", mtorrent.display()))?;
        let dest = if dest.is_dir() {
            dest.join(&info.name)
        } else {
            dest.to_path_buf()
        };
        if dest.exists() {
            return Err(format!("{} already exists", dest.display()));
        }
        let key = key_of(&info);
        if self.records.iter().any(|r| r.key == key) {
            return Err(format!(
                "{} is already shared or downloading here",
                info.name
            ));
        }
        let name = info.name.clone();
        self.start_download(info, mtorrent, &dest, false)
            .map_err(|e| format!("cannot download to {}: {e}", dest.display()))?;
        self.refresh_holders();
        self.save();
        self.notes
            .note(&format!("get {} to {}", mtorrent.display(), dest.display()));
        Ok(vec![format!(
            "downloading {name} to {} in the background",
            dest.display()
        )])
    }

    pub(super) fn show(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for r in &self.records {
            let Kind::Download { started, had, .. } = r.kind else {
                continue;
            };
            let Some((bits, complete)) = self.live_progress(&r.key) else {
                lines.push(format!(
                    "[F] {} (failed: see the messages above)",
                    r.meta.name
                ));
                continue;
            };
            if complete {
                lines.push(format!("[S] {}", r.meta.name));
                continue;
            }
            let (have, total) = (bits.count(), bits.num_bits());
            let percent = (have * 100).checked_div(total).unwrap_or(100);
            let geometry = r.meta.geometry();
            let bytes: u64 = bits
                .iter_ones()
                .filter_map(|p| geometry.piece_span(p as u32))
                .map(|(_, l)| l as u64)
                .sum();
            let before = (had as u64).min(have as u64) * geometry.piece_size();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let rate = bytes.saturating_sub(before) as f64 / secs;
            lines.push(format!(
                "[D] {} {percent}% ({have}/{total} pieces, {})",
                r.meta.name,
                human_rate(rate)
            ));
        }
        if lines.is_empty() {
            lines.push("no downloads".to_string());
        }
        lines
    }

    pub(super) fn remove(&mut self, mtorrent: &Path) -> Answer {
        let wanted = fs::canonicalize(mtorrent).unwrap_or_else(|_| mtorrent.to_path_buf());
        let at = self
            .records
            .iter()
            .position(|r| {
                fs::canonicalize(&r.mtorrent).unwrap_or_else(|_| r.mtorrent.clone()) == wanted
            })
            .ok_or_else(|| format!("{} is not shared by this client", mtorrent.display()))?;
        let r = &self.records[at];
        if let Some((bits, false)) = self.live_progress(&r.key) {
            let percent = (bits.count() * 100)
                .checked_div(bits.num_bits())
                .unwrap_or(100);
            return Err(format!(
                "cannot remove {}: still downloading ({percent}%); only complete files can be removed",
                r.meta.name
            ));
        }
        let r = self.records.remove(at);
        self.unregister(&r.key, r.meta.size, &r.meta.name);
        self.store.forget(&r.key);
        let _ = fs::remove_file(&r.mtorrent);
        self.save();
        self.notes.note(&format!("remove {}", r.mtorrent.display()));
        Ok(vec![format!(
            "removed {} (the file stays at {})",
            r.meta.name,
            r.path.display()
        )])
    }
}

fn human_rate(bytes_per_sec: f64) -> String {
    if bytes_per_sec >= 1e6 {
        format!("{:.1} MB/s", bytes_per_sec / 1e6)
    } else {
        format!("{:.1} KB/s", bytes_per_sec / 1e3)
    }
}
