//! Gradient buckets for communication (`ferroptim.distributed`): many arrays packed
//! one after the other into one flat buffer, so that one collective carries them
//! all, and unpacked back after it, divided by the number of ranks when averaging
//! (DistributedDataParallel's bucket: `bucket.div_(world_size)`).
//!
//! ```text
//! pack:    out = concat(parts)
//! unpack:  parts[i] = buffer[offsetᵢ .. offsetᵢ + len(parts[i])] / divisor   (divisor 1: a copy)
//! ```
//!
//! Both run on the pool, a chunk of [`CHUNK`] elements per job, like every kernel.

use crate::element::Element;
use crate::exec::{map_jobs, CHUNK};

/// The pieces of a copy: (source, target) chunks of at most [`CHUNK`] elements.
fn pieces<'a, T>(pairs: impl Iterator<Item = (&'a [T], &'a mut [T])>) -> Vec<(&'a [T], &'a mut [T])> {
    let mut jobs = Vec::new();
    for (src, dst) in pairs {
        jobs.extend(src.chunks(CHUNK).zip(dst.chunks_mut(CHUNK)));
    }
    jobs
}

/// Copies `parts` one after the other into `out`.
///
/// # Panics
/// If `out` is not as long as the parts together.
pub fn pack<T: Element>(parts: &[&[T]], out: &mut [T]) {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    assert_eq!(out.len(), total, "the bucket has {} elements, the parts {total}", out.len());
    let mut rest = out;
    let mut pairs = Vec::with_capacity(parts.len());
    for part in parts {
        let (dst, tail) = rest.split_at_mut(part.len());
        pairs.push((*part, dst));
        rest = tail;
    }
    map_jobs(total, pieces(pairs.into_iter()), |(src, dst)| dst.copy_from_slice(src));
}

/// Copies `buffer` back into `parts` (the first `parts[0].len()` elements into
/// `parts[0]`, and so on), each element divided by `divisor` unless it is 1.
///
/// # Panics
/// If `buffer` is not as long as the parts together.
pub fn unpack<T: Element>(buffer: &[T], parts: &mut [&mut [T]], divisor: T) {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    assert_eq!(buffer.len(), total, "the bucket has {} elements, the parts {total}", buffer.len());
    let mut rest = buffer;
    let mut pairs = Vec::with_capacity(parts.len());
    for part in parts.iter_mut() {
        let (src, tail) = rest.split_at(part.len());
        pairs.push((src, &mut **part));
        rest = tail;
    }
    let jobs = pieces(pairs.into_iter());
    if divisor == T::one() {
        map_jobs(total, jobs, |(src, dst)| dst.copy_from_slice(src));
    } else {
        map_jobs(total, jobs, |(src, dst)| divide(src, dst, divisor));
    }
}

/// `dst[i] = src[i] / divisor`.
fn divide<T: Element>(src: &[T], dst: &mut [T], divisor: T) {
    let src = &src[..dst.len()];
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s / divisor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_same_bits, Rng, LENGTHS, THREADS};
    use crate::threads::{set_num_threads, tests::THREADS_LOCK};

    fn check<T: Element>() {
        let mut rng = Rng::new(21);
        // the usual lengths, and again with a long part first (chunks of one part in
        // several jobs next to short parts)
        let lengths = [LENGTHS.to_vec(), vec![3 * CHUNK + 5, 0, 2]].concat();
        let parts: Vec<Vec<T>> = lengths.iter().map(|&n| rng.vec(n)).collect();
        let views: Vec<&[T]> = parts.iter().map(|v| v.as_slice()).collect();
        let plain: Vec<T> = parts.iter().flatten().copied().collect();
        for threads in THREADS {
            set_num_threads(threads).unwrap();
            let mut out = vec![T::zero(); plain.len()];
            pack(&views, &mut out);
            assert_same_bits("pack", &out, &plain);
            for divisor in [1.0, 2.0, 3.0] {
                let mut back: Vec<Vec<T>> = parts.iter().map(|p| vec![T::of(7.0); p.len()]).collect();
                let mut targets: Vec<&mut [T]> = back.iter_mut().map(|v| v.as_mut_slice()).collect();
                unpack(&out, &mut targets, T::of(divisor));
                for (p, b) in parts.iter().zip(&back) {
                    let want: Vec<T> = p.iter().map(|&x| x / T::of(divisor)).collect();
                    assert_same_bits(&format!("unpack / {divisor}"), b, &want);
                }
            }
        }
    }

    #[test]
    fn pack_and_unpack_are_the_plain_copies_and_divisions() {
        let _g = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        check::<f32>();
        check::<f64>();
    }
}
