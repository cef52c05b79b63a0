//! Running an elementwise optimizer over many tensors at once.
//!
//! An [`Elementwise`] optimizer updates each element of a parameter from the same
//! element of its gradient and of its state buffers, with a few constants per tensor
//! and step (a bias correction, a learning rate). A [`Batch`] collects the tensors of
//! one step, computes those constants once per tensor, and gathers tensors with the
//! same constants into runs updated in one call. A small step runs on the calling
//! thread; a mid-sized one is shared between the calling thread and a [`crew`] of
//! the pool's threads; a big one goes to the pool. Work is handed out in pieces:
//! big tensors cut into chunks, small ones in runs, so 2000 tiny tensors cost little
//! more than one big one.
//!
//! Chunking never changes a number: the update of an element depends on nothing but
//! that element, and the vectorized loop and its scalar tail compute the same
//! operations in the same order (no fused multiply-add), so every element gets the
//! same bits whatever the thread count, chunk or instruction set.

use rayon::prelude::*;

use std::sync::Mutex;

use crate::crew;
use crate::element::Element;
use crate::threads;

/// The most state buffers (arrays shaped like the parameter) an optimizer keeps.
pub const MAX_BUFFERS: usize = 4;
/// The most scalar state values (step counters and the like) an optimizer keeps.
pub const MAX_SCALARS: usize = 3;
/// Elements per work item when a tensor is split across threads.
pub const CHUNK: usize = 1 << 15;
/// Below this many elements a batch stays off the pool (it runs on the calling
/// thread, shared with a crew from [`SHARE_FROM`]): handing the pool a step that
/// takes well under a millisecond costs more in waking sleeping threads, the caller
/// among them, than it saves (measured on a 2-vCPU VM). The thread count never
/// changes a result, only the time.
pub const SERIAL_BELOW: usize = 1 << 20;
/// From this many elements (and below [`SERIAL_BELOW`]) a batch shares its updates
/// between the calling thread and the pool's threads ([`Crew`](crew::Crew)), whose
/// helpers wait awake and whose caller never sleeps.
pub const SHARE_FROM: usize = 1 << 16;
/// The fewest elements in a piece of a [`Crew`](crew::Crew)'s work.
const SHARE_MIN: usize = 1 << 12;

/// Whether `elements` elements of work run on the calling thread (see [`SERIAL_BELOW`]).
pub(crate) fn serial(elements: usize) -> bool {
    elements < SERIAL_BELOW || threads::get_num_threads() <= 1
}

/// Whether a batch of `elements` elements shares its updates between the calling
/// thread and the pool's threads (a [`Crew`](crew::Crew)): from [`SHARE_FROM`]
/// elements, below [`SERIAL_BELOW`], with more than one thread.
pub fn shared(elements: usize) -> bool {
    (SHARE_FROM..SERIAL_BELOW).contains(&elements) && threads::get_num_threads() > 1
}

/// Whether a batch of `elements` elements shares its work with the pool's threads at
/// all: from [`SHARE_FROM`] elements, with more than one thread. Above
/// [`SERIAL_BELOW`] it goes to the pool, unless the calling thread has a crew woken
/// ahead ([`crew::wake_ahead`]), which then takes it as it takes a [`shared`] batch.
pub fn parallel(elements: usize) -> bool {
    elements >= SHARE_FROM && threads::get_num_threads() > 1
}

/// How many elements a piece of a shared batch of `elements` elements holds at
/// most: small enough for every thread to take several, big enough to be worth
/// taking.
pub fn piece_size(elements: usize) -> usize {
    (elements / (4 * threads::get_num_threads())).clamp(SHARE_MIN, CHUNK)
}

/// `f` over every job, in order: on the pool when `elements` (the work the jobs
/// cover) is worth it, else on the calling thread. The results come back in job
/// order either way, so a sum over them never depends on the thread count.
pub(crate) fn map_jobs<J: Send, R: Send>(elements: usize, jobs: Vec<J>, f: impl Fn(J) -> R + Sync + Send) -> Vec<R> {
    if serial(elements) || jobs.len() < 2 {
        jobs.into_iter().map(f).collect()
    } else {
        threads::install(|| jobs.into_par_iter().map(&f).collect())
    }
}

/// The slices of one parameter (or of one chunk of it) for an elementwise update:
/// the parameter, its gradient, and the optimizer's state buffers in the order the
/// optimizer documents; unused buffer slots are empty.
pub struct TensorSlices<'a, T> {
    /// The parameter, updated in place.
    pub param: &'a mut [T],
    /// Its gradient, as long as `param`.
    pub grad: &'a [T],
    /// The state buffers, each as long as `param`; the unused ones empty.
    pub buffers: [&'a mut [T]; MAX_BUFFERS],
}

impl<'a, T> TensorSlices<'a, T> {
    /// Groups a parameter's slices; an empty buffer stands for a slot the
    /// configuration does not use (see [`Elementwise::uses_buffer`]).
    ///
    /// # Panics
    /// If the gradient or a non-empty buffer is not as long as the parameter, or if
    /// more than [`MAX_BUFFERS`] buffers are given.
    pub fn new(param: &'a mut [T], grad: &'a [T], buffers: impl IntoIterator<Item = &'a mut [T]>) -> Self {
        let n = param.len();
        assert_eq!(grad.len(), n, "the gradient has {} elements, the parameter {n}", grad.len());
        let mut slots: [&'a mut [T]; MAX_BUFFERS] = Default::default();
        for (k, b) in buffers.into_iter().enumerate() {
            assert!(k < MAX_BUFFERS, "more than {MAX_BUFFERS} state buffers");
            assert!(b.is_empty() || b.len() == n, "state buffer {k} has {} elements, the parameter {n}", b.len());
            slots[k] = b;
        }
        TensorSlices { param, grad, buffers: slots }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.param.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.param.is_empty()
    }

    /// The parameter, the gradient and the first two state buffers, each cut to the
    /// parameter's length, so that a loop over `0..len` indexes them without bounds
    /// checks (the opening of a kernel's loop over the elements of a tensor).
    ///
    /// # Panics
    /// If the gradient or either buffer is shorter than the parameter.
    #[inline(always)]
    pub fn with_two_buffers(&mut self) -> (&mut [T], &[T], &mut [T], &mut [T]) {
        let n = self.param.len();
        let [first, second, ..] = &mut self.buffers;
        (&mut self.param[..], &self.grad[..n], &mut first[..n], &mut second[..n])
    }

    /// The same slices, borrowed for a shorter time (one pass of several).
    pub fn reborrow(&mut self) -> TensorSlices<'_, T> {
        let mut buffers: [&mut [T]; MAX_BUFFERS] = Default::default();
        for (slot, b) in buffers.iter_mut().zip(self.buffers.iter_mut()) {
            *slot = &mut b[..];
        }
        TensorSlices { param: &mut self.param[..], grad: self.grad, buffers }
    }

    /// Whether exactly the buffer slots `kernel` uses are present.
    fn fits<K: Elementwise>(&self, kernel: &K) -> bool {
        (0..MAX_BUFFERS).all(|k| (self.buffers[k].len() == self.param.len()) == kernel.uses_buffer(k))
    }

    /// Splits into the first `mid` elements and the rest.
    pub fn split_at(self, mid: usize) -> (Self, Self) {
        let (p0, p1) = self.param.split_at_mut(mid);
        let (g0, g1) = self.grad.split_at(mid);
        let mut b0: [&'a mut [T]; MAX_BUFFERS] = Default::default();
        let mut b1: [&'a mut [T]; MAX_BUFFERS] = Default::default();
        for (k, b) in self.buffers.into_iter().enumerate() {
            if !b.is_empty() {
                let (x, y) = b.split_at_mut(mid);
                b0[k] = x;
                b1[k] = y;
            }
        }
        (TensorSlices { param: p0, grad: g0, buffers: b0 }, TensorSlices { param: p1, grad: g1, buffers: b1 })
    }
}

/// An optimizer whose update is elementwise over (parameter, gradient, state buffers).
///
/// Implemented by the hyperparameter struct of each such optimizer (e.g.
/// [`AdamHyper`](crate::AdamHyper)): one value per param group.
pub trait Elementwise: Sync {
    /// How many scalar state values each parameter has (e.g. 1 for Adam's `step`).
    const SCALARS: usize;

    /// The constants of one tensor's update at one step (bias corrections...).
    type Step: Copy + Send + Sync;

    /// How many buffer slots this configuration spans (e.g. 3 for Adam with amsgrad).
    fn buffers(&self) -> usize;

    /// Whether this configuration uses buffer slot `k` (below [`buffers`](Self::buffers));
    /// all of them unless overridden (RMSprop keeps `grad_avg` in slot 2 without
    /// `momentum_buffer` in slot 1 when centered without momentum).
    fn uses_buffer(&self, k: usize) -> bool {
        k < self.buffers()
    }

    /// Advances one parameter's scalar state by a step and returns the constants of
    /// its update. `fresh`: its state was created for this step. Must be a pure
    /// function of its arguments (a [`Batch`] reuses the result for equal inputs).
    fn begin(&self, scalars: &mut [f64], fresh: bool) -> Self::Step;

    /// Updates the elements of `t` (a whole tensor or a chunk of one) in place.
    fn update<T: Element>(&self, step: &Self::Step, t: TensorSlices<'_, T>);

    /// Updates each of `tensors` with the same step constants, as
    /// [`update`](Self::update) updates one: by default one call each. A kernel whose
    /// per-call setup (its constants rounded to `T`, the choice of its instruction
    /// set) costs as much as a small tensor's elements overrides it to set up once
    /// (a [`Batch`] on the calling thread hands it runs of small tensors).
    fn update_all<T: Element>(&self, step: &Self::Step, tensors: &mut [TensorSlices<'_, T>]) {
        for t in tensors {
            self.update(step, t.reborrow());
        }
    }
}

/// Tensors (or chunks of one) with the same step constants, updated in one
/// [`Elementwise::update_all`] call.
struct Run<'a, K: Elementwise, T> {
    kernel: &'a K,
    step: K::Step,
    elements: usize,
    tensors: Vec<TensorSlices<'a, T>>,
}

impl<'a, K: Elementwise, T> Run<'a, K, T> {
    fn update(mut self)
    where
        T: Element,
    {
        self.kernel.update_all(&self.step, &mut self.tensors);
    }

    /// The same updates as runs of at most `size` elements: its big tensors cut
    /// into chunks, its small ones gathered in order.
    fn split(self, size: usize, out: &mut Vec<Self>) {
        let Run { kernel, step, tensors, .. } = self;
        let piece = |elements, tensors| Run { kernel, step, elements, tensors };
        let mut small = Vec::new();
        let mut elements = 0;
        for mut t in tensors {
            while t.len() > size {
                let (head, tail) = t.split_at(size);
                out.push(piece(size, vec![head]));
                t = tail;
            }
            if elements + t.len() > size {
                out.push(piece(elements, std::mem::take(&mut small)));
                elements = 0;
            }
            elements += t.len();
            small.push(t);
        }
        if !small.is_empty() {
            out.push(piece(elements, small));
        }
    }
}

struct Memo<'a, K: Elementwise> {
    kernel: &'a K,
    fresh: bool,
    before: [f64; MAX_SCALARS],
    after: [f64; MAX_SCALARS],
    step: K::Step,
}

/// How many tensors with the same step constants a batch gathers into one run
/// ([`Elementwise::update_all`]).
pub const RUN: usize = 64;

/// The tensors of one optimizer step, of one element type, updated together.
///
/// Pushed tensors are gathered into runs of up to [`RUN`] tensors with the same step
/// constants. A batch known to be small ([`Batch::with_size`]) updates each run on
/// the calling thread as soon as it is complete, and so stores only that run; any
/// other keeps its runs for [`Batch::run`], which hands them to other threads too.
/// Every update has run when [`Batch::run`] returns.
pub struct Batch<'a, K: Elementwise, T> {
    runs: Vec<Run<'a, K, T>>,
    elements: usize,
    memo: Option<Memo<'a, K>>,
    immediate: bool,
    /// The run being gathered: tensors with the memo's kernel and step.
    pending: Vec<TensorSlices<'a, T>>,
    /// The elements of `pending`.
    pending_elements: usize,
}

impl<K: Elementwise, T> Default for Batch<'_, K, T> {
    fn default() -> Self {
        Batch { runs: Vec::new(), elements: 0, memo: None, immediate: false, pending: Vec::new(), pending_elements: 0 }
    }
}

impl<'a, K: Elementwise, T: Element> Batch<'a, K, T> {
    /// An empty batch that keeps its runs for [`Batch::run`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch for about `elements` elements in all: below the size worth
    /// sharing with other threads (or with one thread) the updates run on the calling
    /// thread as they are pushed, a run of tensors at a time (see [`Batch`]).
    pub fn with_size(elements: usize) -> Self {
        Batch { immediate: serial(elements) && !shared(elements), ..Self::default() }
    }

    /// Adds one parameter: advances its scalar state now (see [`Elementwise::begin`])
    /// and queues its update for [`Batch::run`].
    ///
    /// # Panics
    /// If `scalars` does not hold `K::SCALARS` values, or if the tensor's buffers are
    /// not the slots the configuration uses.
    pub fn push(&mut self, kernel: &'a K, scalars: &mut [f64], fresh: bool, tensor: TensorSlices<'a, T>) {
        assert_eq!(scalars.len(), K::SCALARS, "expected {} scalar state values", K::SCALARS);
        if !tensor.is_empty() {
            assert!(tensor.fits(kernel), "the state buffers are not the slots this configuration uses");
        }
        match &self.memo {
            Some(m) if std::ptr::eq(m.kernel, kernel) && m.fresh == fresh && m.before[..K::SCALARS] == *scalars => {
                scalars.copy_from_slice(&m.after[..K::SCALARS]);
            }
            _ => {
                self.flush(); // the pending run has the old step's constants
                let mut before = [0.0; MAX_SCALARS];
                before[..K::SCALARS].copy_from_slice(scalars);
                let step = kernel.begin(scalars, fresh);
                let mut after = [0.0; MAX_SCALARS];
                after[..K::SCALARS].copy_from_slice(scalars);
                self.memo = Some(Memo { kernel, fresh, before, after, step });
            }
        }
        if tensor.is_empty() {
            return;
        }
        self.elements += tensor.len();
        self.pending_elements += tensor.len();
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(RUN);
        }
        self.pending.push(tensor);
        if self.pending.len() == RUN {
            self.flush();
        }
    }

    /// Completes the pending run: updates it now on the calling thread, or keeps it
    /// for [`Batch::run`] (see [`Batch::with_size`]).
    fn flush(&mut self) {
        let Some(m) = &self.memo else {
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        if self.immediate {
            m.kernel.update_all(&m.step, &mut self.pending);
            self.pending.clear();
        } else {
            let tensors = std::mem::replace(&mut self.pending, Vec::with_capacity(RUN));
            self.runs.push(Run { kernel: m.kernel, step: m.step, elements: self.pending_elements, tensors });
        }
        self.pending_elements = 0;
    }

    /// The number of elements pushed.
    pub fn elements(&self) -> usize {
        self.elements
    }

    /// Runs every queued update: on the calling thread below [`SHARE_FROM`]
    /// elements (or with one thread), shared between the calling thread and the
    /// pool's ([`Crew`](crew::Crew)) from there, on the pool from [`SERIAL_BELOW`]
    /// (shared with the crew woken ahead on this thread, if there is one: its helpers
    /// hold pool threads until it is done).
    pub fn run(mut self) {
        self.flush();
        if self.immediate {
            return; // every run already done
        }
        if shared(self.elements) || (parallel(self.elements) && crew::is_ahead()) {
            self.run_shared();
        } else if serial(self.elements) {
            self.run_serial();
        } else {
            self.run_parallel();
        }
    }

    /// Runs every update on the calling thread.
    pub(crate) fn run_serial(mut self) {
        self.flush();
        self.runs.into_iter().for_each(Run::update);
    }

    /// The runs, none above `size` elements.
    fn pieces(mut self, size: usize) -> Vec<Run<'a, K, T>> {
        self.flush();
        let mut pieces = Vec::with_capacity(self.runs.len() + self.elements / size);
        for run in self.runs {
            if run.elements <= size {
                pieces.push(run);
            } else {
                run.split(size, &mut pieces);
            }
        }
        pieces
    }

    /// Runs the updates on the pool, in pieces of at most [`CHUNK`] elements.
    pub(crate) fn run_parallel(self) {
        let pieces = self.pieces(CHUNK);
        threads::install(|| pieces.into_par_iter().for_each(Run::update));
    }

    /// Runs the updates on the calling thread and a [`Crew`](crew::Crew) of the
    /// pool's threads (the one woken ahead on this thread, if any), in pieces small
    /// enough for every thread to take several.
    pub(crate) fn run_shared(self) {
        let size = piece_size(self.elements);
        let pieces: Vec<Mutex<Option<Run<'a, K, T>>>> =
            self.pieces(size).into_iter().map(|r| Mutex::new(Some(r))).collect();
        crew::woken().share(pieces.len(), &|i| {
            // each piece is taken once: its lock is never contended
            if let Some(piece) = pieces[i].lock().unwrap_or_else(|e| e.into_inner()).take() {
                piece.update();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::adam::AdamHyper;
    use crate::kernels::testing::{assert_same_bits, Rng};
    use crate::threads::set_num_threads;
    use crate::threads::tests::THREADS_LOCK;

    /// A batch too big to share ([`SERIAL_BELOW`] elements or more) runs through the
    /// crew woken ahead on its thread, when there is one (which it takes), with the
    /// numbers of a serial run: tensors above a piece's size split, small ones whole.
    #[test]
    fn a_big_batch_runs_on_the_crew_woken_ahead() {
        let _g = THREADS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        set_num_threads(2).unwrap();
        let kernel = AdamHyper::adamw();
        let lens = [SERIAL_BELOW + 3, 5, 0, 3 * CHUNK + 1, 33];
        let mut rng = Rng::new(5);
        let params: Vec<Vec<f32>> = lens.iter().map(|&n| rng.vec(n)).collect();
        let grads: Vec<Vec<f32>> = lens.iter().map(|&n| rng.vec(n)).collect();
        let run = |ahead: bool| {
            let (mut params, mut scalars) = (params.clone(), vec![[0.0; 1]; lens.len()]);
            let mut bufs: Vec<Vec<Vec<f32>>> = lens
                .iter()
                .map(|&n| (0..kernel.buffers()).map(|k| vec![0.0; if kernel.uses_buffer(k) { n } else { 0 }]).collect())
                .collect();
            for step in 0..3 {
                let crew = ahead.then(crew::wake_ahead);
                let mut batch = if ahead { Batch::new() } else { Batch::with_size(0) };
                for (((p, g), b), s) in params.iter_mut().zip(&grads).zip(&mut bufs).zip(&mut scalars) {
                    batch.push(&kernel, s, step == 0, TensorSlices::new(p, g, b.iter_mut().map(|v| v.as_mut_slice())));
                }
                assert!(parallel(batch.elements()) && !shared(batch.elements()));
                batch.run();
                assert!(!crew::is_ahead(), "the batch took the crew");
                drop(crew);
            }
            (params, bufs, scalars)
        };
        let (want, got) = (run(false), run(true));
        for t in 0..lens.len() {
            assert_same_bits(&format!("param {t}"), &got.0[t], &want.0[t]);
            for (k, (g, w)) in got.1[t].iter().zip(&want.1[t]).enumerate() {
                assert_same_bits(&format!("buffer {k} of {t}"), g, w);
            }
        }
        assert_eq!(got.2, want.2);
    }
}
