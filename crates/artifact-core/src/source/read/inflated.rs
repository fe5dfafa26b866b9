//! Members of deflated inner zips (`unzip`), cut from their zip as it is inflated
//! again: the producer keeps one inflation going ([`Inflating`]) and takes each
//! wanted member's region from it in order, as [`Piece`]s like any entry's.
//!
//! Invariants: a run of wanted members of one zip, in increasing offset order with
//! nothing else between them, inflates the zip once; anything else (another entry,
//! another zip, an earlier offset) starts a new inflation, and [`member_regions`]
//! plans the zip's compressed data to be read again exactly where the producer will
//! start one, so the ordered chunk stream and the producer always agree. Inflated
//! bytes sent on hold permits of the read budget (or, for members wanted whole, the
//! member's transform footprint), as fetched chunks do.

use std::collections::BTreeMap;
use std::ops::Range;

use artifact_engine::entry::header_len;
use artifact_engine::zip::inner::Inflater;
use artifact_engine::zip::CdEntry;
use artifact_engine::ZipError;
use bytes::{Bytes, BytesMut};
use futures::Stream;

use super::{data_span, send, Gone, Permitted, Piece, Producer, Want};
use crate::error::ArtifactCause;
use crate::source::ZipIndex;

/// Most inflated bytes made per step (about a millisecond of CPU), so the producer
/// yields to the runtime often.
const STEP: usize = 256 << 10;
/// The longest local header: fixed part, name and extra field.
const MAX_HEADER: u64 = 30 + 2 * 65_535;

/// One inflation of a deflated zip entry in progress.
pub(super) struct Inflating {
    /// The zip entry (index into the index's entries).
    container: usize,
    /// The next compressed byte to read, and where its data ends (object offsets).
    pos_in: u64,
    end_in: u64,
    inflater: Inflater,
    /// The inflated offset of the next byte made.
    out_pos: u64,
}

/// For each of `wants`: `None` for an entry of the input itself, or for a member of
/// a deflated zip that zip and whether an inflation of it starts there (as
/// [`Producer::member`] decides).
fn member_starts(index: &ZipIndex, wants: &[Want]) -> Vec<Option<(usize, bool)>> {
    let mut at: Option<(usize, u64)> = None;
    wants
        .iter()
        .map(|w| {
            let Some((c, _)) = index.deflated_container(w.entry) else {
                at = None;
                return None;
            };
            let fresh = !goes_on(at, c, index.entries[w.entry].header_offset);
            at = Some((c, index.ends[w.entry]));
            Some((c, fresh))
        })
        .collect()
}

/// The read-plan regions of `wants`: an entry's own region, or for members of a
/// deflated zip the zip's compressed data where an inflation starts (empty where one
/// goes on).
pub(super) fn member_regions(index: &ZipIndex, wants: &[Want]) -> Vec<Range<u64>> {
    member_starts(index, wants)
        .into_iter()
        .zip(wants)
        .map(|(start, w)| match start {
            None => index.entries[w.entry].header_offset..index.ends[w.entry],
            Some((c, true)) => index.deflated[&c].clone(),
            Some((_, false)) => 0..0,
        })
        .collect()
}

/// How many times reading `wants` inflates each deflated zip (by zip entry).
pub fn inflation_passes(index: &ZipIndex, wants: &[Want]) -> BTreeMap<usize, u64> {
    let mut passes = BTreeMap::new();
    for (c, _) in member_starts(index, wants)
        .into_iter()
        .flatten()
        .filter(|(_, f)| *f)
    {
        *passes.entry(c).or_insert(0) += 1;
    }
    passes
}

/// True when an inflation of zip `c` that has reached `at` can go on to `offset`.
fn goes_on(at: Option<(usize, u64)>, c: usize, offset: u64) -> bool {
    matches!(at, Some((ac, pos)) if ac == c && pos <= offset)
}

impl<S> Producer<S>
where
    S: Stream<Item = Result<(u64, Bytes), ArtifactCause>> + Unpin,
{
    /// Sends member `w` of deflated zip `c` (compressed data at `data`).
    pub(super) async fn member(
        &mut self,
        index: &ZipIndex,
        w: &Want,
        c: usize,
        data: Range<u64>,
    ) -> Result<Result<(), Gone>, ArtifactCause> {
        let e = &index.entries[w.entry];
        let zip = &index.entries[c];
        let at = self.inflating.as_ref().map(|i| (i.container, i.out_pos));
        if !goes_on(at, c, e.header_offset) {
            self.inflating = Some(Inflating {
                container: c,
                pos_in: data.start,
                end_in: data.end,
                inflater: Inflater::new(),
                out_pos: 0,
            });
        }
        self.skip_to(zip, e.header_offset).await?;
        let len = index.ends[w.entry] - e.header_offset;
        if let Some(footprint) = w.whole {
            let permit = Some(self.budgets.take_transform(footprint).await);
            let region = self.take(zip, len).await?;
            let piece = Piece::Whole {
                tag: w.tag,
                region,
                permit,
            };
            return Ok(send(&self.tx, piece).await);
        }
        if !w.pieces && len <= self.chunk {
            let region = self.take_permitted(zip, len).await?;
            let piece = Piece::Whole {
                tag: w.tag,
                region,
                permit: None,
            };
            return Ok(send(&self.tx, piece).await);
        }
        self.member_pieces(e, zip, w.tag, len).await
    }

    /// Sends a member as its checked header, then its data in slices.
    async fn member_pieces(
        &mut self,
        e: &CdEntry,
        zip: &CdEntry,
        tag: usize,
        len: u64,
    ) -> Result<Result<(), Gone>, ArtifactCause> {
        let head = self.take(zip, len.min(MAX_HEADER)).await?;
        let data_end = data_span(e, header_len(e, &head)?, len)?.end;
        let hlen = data_end - e.compressed_size;
        if send(
            &self.tx,
            Piece::BigStart {
                tag,
                header: Bytes::new(),
                region_len: 0,
            },
        )
        .await
        .is_err()
        {
            return Ok(Err(Gone));
        }
        let first = head.slice(hlen as usize..(data_end as usize).min(head.len()));
        let mut pos = head.len() as u64;
        if !first.is_empty() && send(&self.tx, Piece::BigData(first)).await.is_err() {
            return Ok(Err(Gone));
        }
        while pos < data_end {
            let n = (data_end - pos).min(self.chunk);
            let slice = self.take_permitted(zip, n).await?;
            pos += n;
            if send(&self.tx, Piece::BigData(slice)).await.is_err() {
                return Ok(Err(Gone));
            }
        }
        Ok(send(&self.tx, Piece::BigEnd { tail: Bytes::new() }).await)
    }

    /// Inflates and drops bytes up to inflated offset `to`.
    async fn skip_to(&mut self, zip: &CdEntry, to: u64) -> Result<(), ArtifactCause> {
        let mut scratch = vec![0u8; STEP];
        loop {
            let out_pos = self.inflating.as_ref().map_or(to, |i| i.out_pos);
            if out_pos >= to {
                return Ok(());
            }
            let n = ((to - out_pos) as usize).min(STEP);
            self.inflate_into(zip, &mut scratch[..n]).await?;
        }
    }

    /// The next `len` inflated bytes, holding as many permits of the read budget.
    async fn take_permitted(&mut self, zip: &CdEntry, len: u64) -> Result<Bytes, ArtifactCause> {
        let permit = self
            .budgets
            .read
            .clone()
            .acquire_many_owned(len.clamp(1, self.budgets.read_bytes) as u32)
            .await
            .expect("the read budget is never closed");
        let data = self.take(zip, len).await?;
        Ok(Bytes::from_owner(Permitted {
            data,
            _permit: permit,
        }))
    }

    /// The next `len` inflated bytes.
    async fn take(&mut self, zip: &CdEntry, len: u64) -> Result<Bytes, ArtifactCause> {
        let mut buf = BytesMut::zeroed(len as usize);
        let mut filled = 0;
        while filled < buf.len() {
            let end = (filled + STEP).min(buf.len());
            filled += self.inflate_into(zip, &mut buf[filled..end]).await?;
        }
        Ok(buf.freeze())
    }

    /// Inflates into `out` (some bytes at least): how many were made.
    async fn inflate_into(
        &mut self,
        zip: &CdEntry,
        out: &mut [u8],
    ) -> Result<usize, ArtifactCause> {
        loop {
            let i = self.inflating.as_mut().expect("an inflation is going on");
            if !i.inflater.ended && i.pos_in >= i.end_in {
                // All input is in; the inflater may still hold output.
                let (_, made) = i.inflater.inflate(zip, &[], out)?;
                i.out_pos += made as u64;
                if made > 0 {
                    return Ok(made);
                }
            }
            if i.inflater.ended || i.pos_in >= i.end_in {
                return Err(ZipError::Malformed(format!(
                    "inner zip {:?}: a member runs past the end of its data",
                    zip.name
                ))
                .into());
            }
            let pos_in = i.pos_in;
            let (cs, cb) = self.chunks.covering(pos_in).await?;
            let i = self.inflating.as_mut().expect("an inflation is going on");
            let a = (pos_in - cs) as usize;
            let b = ((i.end_in - cs) as usize).min(cb.len());
            let (used, made) = i.inflater.inflate(zip, &cb[a..b], out)?;
            i.pos_in += used as u64;
            i.out_pos += made as u64;
            if made > 0 {
                tokio::task::yield_now().await;
                return Ok(made);
            }
        }
    }
}
