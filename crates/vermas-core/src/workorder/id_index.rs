//! A bitmap of hashed work order ids (`.work/work_orders.ids`) so `wo create` rules out an id
//! collision with one positioned read instead of loading every work order: a clear bit means
//! the id is certainly free; a set bit means "maybe taken" and the caller checks the projection.
//!
//! It is a cache like the projections: a header records the log position it covers, it is
//! brought up to date from the log under the writers' lock, and rebuilt when it does not match.
//! The bit is fsynced before the header moves, so the header never claims more than the bits.

use crate::event::{EventRef, types};
use crate::fsutil;
use crate::store::{Checkpoint, LineInfo, Store, StoreError, Writer};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

const HEADER_BYTES: u64 = 4096;
const BITMAP_BYTES: u64 = 1 << 20;
const BITS: u64 = BITMAP_BYTES * 8;

/// The id bitmap, open under the writers' lock.
pub struct IdIndex {
    file: File,
    path: PathBuf,
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn bit_of(id: &str) -> (u64, u8) {
    let bit = fnv1a(id) % BITS;
    (HEADER_BYTES + bit / 8, 1u8 << (bit % 8))
}

#[derive(serde::Deserialize)]
struct CreatedId<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
}

/// The bit of the id a `work_order.created` event creates (`None` for any other event).
fn created_bit(ev: &EventRef<'_>) -> Option<(u64, u8)> {
    if ev.event_type != types::WORK_ORDER_CREATED {
        return None;
    }
    ev.data::<CreatedId>().ok().map(|c| bit_of(&c.id))
}

fn set_bit(bitmap: &mut [u8], ev: &EventRef<'_>) {
    if let Some((off, mask)) = created_bit(ev) {
        bitmap[(off - HEADER_BYTES) as usize] |= mask;
    }
}

impl IdIndex {
    /// Opens the index and brings it up to the end of the log. Needs the writer (the lock).
    pub fn open(w: &mut Writer<'_>) -> Result<IdIndex, StoreError> {
        let store = w.store();
        let path = store.dir().join("work_orders.ids");
        let file = fsutil::open_rw(&path).map_err(|e| StoreError::io(&path, e))?;
        let mut idx = IdIndex { file, path };
        let end = w.position()?;
        let header = idx.read_header();
        match header {
            Some(h) if h.seq == end.seq && h.event_id == end.event_id => Ok(idx),
            Some(h) => {
                if !idx.catch_up(store, &h)? {
                    idx.rebuild(store)?;
                }
                Ok(idx)
            }
            None => {
                idx.rebuild(store)?;
                Ok(idx)
            }
        }
    }

    fn read_header(&self) -> Option<Checkpoint> {
        let len = self.file.metadata().ok()?.len();
        if len != HEADER_BYTES + BITMAP_BYTES {
            return None;
        }
        let mut buf = vec![0u8; HEADER_BYTES as usize];
        self.file.read_exact_at(&mut buf, 0).ok()?;
        let end = memchr::memchr(b'\n', &buf)?;
        serde_json::from_slice(&buf[..end]).ok()
    }

    fn write_header(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let mut buf = serde_json::to_vec(cp)?;
        buf.push(b'\n');
        if buf.len() as u64 > HEADER_BYTES {
            return Err(StoreError::io(
                &self.path,
                std::io::Error::other("checkpoint too long for the index header"),
            ));
        }
        buf.resize(HEADER_BYTES as usize, b' ');
        self.file
            .write_all_at(&buf, 0)
            .map_err(|e| StoreError::io(&self.path, e))
    }

    /// Applies the `work_order.created` events after `from`; false when `from` does not match.
    /// Most events create nothing, so only the bytes of new ids are read and written, and the
    /// file is synced only when a bit changed.
    fn catch_up(&mut self, store: &Store, from: &Checkpoint) -> Result<bool, StoreError> {
        // Byte offset → bits to set there.
        let mut touched: BTreeMap<u64, u8> = BTreeMap::new();
        let mut visit = |ev: &EventRef<'_>, _: &LineInfo<'_>| {
            if let Some((off, mask)) = created_bit(ev) {
                *touched.entry(off).or_default() |= mask;
            }
            Ok(())
        };
        let outcome = match store.scan(from, None, &mut visit)? {
            Ok(o) => o,
            Err(_) => return Ok(false),
        };
        let mut changed = false;
        for (off, mask) in touched {
            let mut b = [0u8; 1];
            self.file
                .read_exact_at(&mut b, off)
                .map_err(|e| StoreError::io(&self.path, e))?;
            if b[0] & mask != mask {
                b[0] |= mask;
                self.file
                    .write_all_at(&b, off)
                    .map_err(|e| StoreError::io(&self.path, e))?;
                changed = true;
            }
        }
        if changed {
            self.file
                .sync_data()
                .map_err(|e| StoreError::io(&self.path, e))?;
        }
        self.write_header(&outcome.end)?;
        Ok(true)
    }

    /// Rebuilds the whole bitmap from the log. The header is cleared first, so a rebuild cut
    /// short leaves an index that is rebuilt again.
    fn rebuild(&mut self, store: &Store) -> Result<(), StoreError> {
        let mut bits = vec![0u8; BITMAP_BYTES as usize];
        let mut visit = |ev: &EventRef<'_>, _: &LineInfo<'_>| {
            set_bit(&mut bits, ev);
            Ok(())
        };
        let Ok(outcome) = store.scan(&Checkpoint::default(), None, &mut visit)? else {
            return Err(StoreError::io(
                &self.path,
                std::io::Error::other("the log changed while the id index was rebuilt"),
            ));
        };
        self.file
            .set_len(0)
            .and_then(|_| self.file.set_len(HEADER_BYTES + BITMAP_BYTES))
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.write_bits(&bits)?;
        self.write_header(&outcome.end)
    }

    /// Writes the whole bitmap and syncs it (before any header may claim it).
    fn write_bits(&self, bits: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all_at(bits, HEADER_BYTES)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| StoreError::io(&self.path, e))
    }

    /// Rebuilds the index from a pass over the whole log that the caller makes anyway
    /// (`wo rebuild-projections` builds the projections in the same pass): `pass` gets a
    /// visitor to call with every event and returns its result and the checkpoint it ended at.
    /// Then, under the writers' lock, the bits are written as covering that checkpoint and the
    /// index is brought up to the end of the log (events appended since).
    pub fn rebuild_alongside<T>(
        store: &Store,
        pass: impl FnOnce(&mut dyn FnMut(&EventRef<'_>)) -> Result<(T, Checkpoint), StoreError>,
    ) -> Result<T, StoreError> {
        // The bits, built in memory during the caller's pass.
        let mut bits = vec![0u8; BITMAP_BYTES as usize];
        let (out, covered) = pass(&mut |ev| set_bit(&mut bits, ev))?;
        let mut w = store.lock()?;
        let path = store.dir().join("work_orders.ids");
        let file = fsutil::open_rw(&path).map_err(|e| StoreError::io(&path, e))?;
        let mut idx = IdIndex { file, path };
        // The old header stays valid meanwhile: the new bits are a superset of the old ones.
        idx.file
            .set_len(HEADER_BYTES + BITMAP_BYTES)
            .map_err(|e| StoreError::io(&idx.path, e))?;
        idx.write_bits(&bits)?;
        idx.write_header(&covered)?;
        let end = w.position()?;
        if (end.seq != covered.seq || end.event_id != covered.event_id)
            && !idx.catch_up(store, &covered)?
        {
            idx.rebuild(store)?;
        }
        Ok(out)
    }

    /// False when `id` is certainly unused; true when it may be taken.
    pub fn maybe_taken(&self, id: &str) -> Result<bool, StoreError> {
        let (off, mask) = bit_of(id);
        let mut b = [0u8; 1];
        self.file
            .read_exact_at(&mut b, off)
            .map_err(|e| StoreError::io(&self.path, e))?;
        Ok(b[0] & mask != 0)
    }

    /// Records a created id: the bit (fsynced), then the header at the log's new end.
    pub fn record(&mut self, id: &str, w: &mut Writer<'_>) -> Result<(), StoreError> {
        let (off, mask) = bit_of(id);
        let mut b = [0u8; 1];
        self.file
            .read_exact_at(&mut b, off)
            .map_err(|e| StoreError::io(&self.path, e))?;
        b[0] |= mask;
        self.file
            .write_all_at(&b, off)
            .and_then(|_| {
                if crate::store::failpoint("ids-fsync") {
                    return Err(std::io::Error::from_raw_os_error(libc::EIO));
                }
                self.file.sync_data()
            })
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.write_header(&w.position()?)
    }

    /// After a failed [`IdIndex::record`]: makes the next writer rebuild the index from the log
    /// (its header is cut off), so a bit that may not have reached the disk is never trusted.
    /// Best effort: a header left as it was still names the log position before the event,
    /// and the next writer catches up from there.
    pub fn invalidate(&self) {
        let _ = self.file.set_len(0);
    }

    /// Opens the id index for a create, or says why it cannot be used: a cache that cannot be
    /// read or brought up to date must not stop work (the caller checks ids the slow way).
    pub fn open_or_warn(w: &mut Writer<'_>) -> Option<IdIndex> {
        match IdIndex::open(w) {
            Ok(i) => Some(i),
            Err(e) => {
                w.warnings.push(format!(
                    "the id index .work/work_orders.ids cannot be used ({e}); checking the id against every work order instead"
                ));
                None
            }
        }
    }
}
