//! bitsandbytes' block-wise 8-bit quantization of optimizer state (Dettmers et al.,
//! "8-bit Optimizers via Block-wise Quantization", ICLR 2022), as its CPU path
//! computes it.
//!
//! A state buffer is cut into blocks of [`BLOCK`] elements. Each block keeps its
//! largest magnitude (`absmax`, float32) and one byte per element: the index of the
//! entry of a 256-entry map (the *dynamic* data type, [`SIGNED`] for first moments,
//! [`UNSIGNED`] for second moments) nearest to the element divided by `absmax`.
//!
//! ```text
//! dequantize:  x = map[code] · absmax
//! quantize:    absmax = max |x| over the block   (a block of zeros: absmax 0, codes 0)
//!              code = lut[round((clamp(x · (1 / absmax), −1, 1) + 1) / 2 · 65535)]
//! ```
//!
//! `lut` is bitsandbytes' table of 65536 bins over [−1, 1], each holding the map entry
//! nearest to the bin's centre (the first entry whose upper midpoint is not below it).

use std::sync::{Arc, Mutex};

/// Elements per quantization block (bitsandbytes' optimizers use 256).
pub const BLOCK: usize = 256;
/// Entries in a quantization map.
pub const MAP_SIZE: usize = 256;
/// Bins of the quantization lookup table.
const LUT_SIZE: usize = 65536;
/// The table's length in memory: three bytes more, so that a 4-byte read at any bin
/// stays inside it (the gathered lookup, [`Quantizer::lookup`]).
const LUT_PADDED: usize = LUT_SIZE + 3;

/// The number of blocks of a buffer of `n` elements.
pub fn blocks(n: usize) -> usize {
    n.div_ceil(BLOCK)
}

// bitsandbytes' `create_dynamic_map(signed=True)` and `create_dynamic_map(signed=False)`
// (max_exponent_bits 7, total_bits 8), as float32 bit patterns: for each exponent
// i = 0..6, the midpoints of `torch.linspace(0.1, 1, k + 1)` (float32) times 10^(i − 6),
// with k = 2^i (signed, both signs) or 2^(i + 1) (unsigned), then 0 and 1, sorted.
// The table is the function's output, bit for bit (torch's vectorized linspace
// rounds in its own way); the tests check its construction against it.
const SIGNED_BITS: [u32; 256] = [
    0xbf7e3333, 0xbf7a999a, 0xbf770000, 0xbf736666, 0xbf6fcccd, 0xbf6c3333, 0xbf68999a, 0xbf650000, 0xbf616666,
    0xbf5dcccd, 0xbf5a3333, 0xbf56999a, 0xbf530000, 0xbf4f6666, 0xbf4bcccd, 0xbf483333, 0xbf44999a, 0xbf410000,
    0xbf3d6666, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6666, 0xbf27cccd, 0xbf243334, 0xbf20999a,
    0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a, 0xbf0b0000, 0xbf076666, 0xbf03cccc, 0xbf003333,
    0xbef93332, 0xbef20000, 0xbeeacccc, 0xbee3999a, 0xbedc6666, 0xbed53333, 0xbece0000, 0xbec6cccc, 0xbebf999a,
    0xbeb86666, 0xbeb13333, 0xbeaa0000, 0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d9999,
    0xbe6f3333, 0xbe60cccd, 0xbe526666, 0xbe440000, 0xbe35999a, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000,
    0xbddb3334, 0xbdc9eb85, 0xbdc428f7, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c2a, 0xbda1999a,
    0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147b, 0xbd728f5d, 0xbd670a3d, 0xbd5b851f,
    0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae148, 0xbcfeb852, 0xbce7ae15,
    0xbcd0a3d7, 0xbcb9999a, 0xbca28f5d, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148, 0xbc1f3b64, 0xbc160418, 0xbc0ccccd,
    0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4, 0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a,
    0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d, 0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01,
    0xb9c7e283, 0xb98ce705, 0xb923d70b, 0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94,
    0xb513a3b7, 0x00000000, 0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b,
    0x3923d70b, 0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
    0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4, 0x3bcfdf3b,
    0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148, 0x3c68f5c3, 0x3c8b851f,
    0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148, 0x3d166667, 0x3d21eb85, 0x3d2d70a3,
    0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d, 0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d,
    0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a, 0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667,
    0x3dc428f7, 0x3dc9eb85, 0x3ddb3334, 0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000,
    0x3e526666, 0x3e60cccd, 0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc,
    0x3eaa0000, 0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
    0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a, 0x3f123334,
    0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666, 0x3f2f0000, 0x3f32999a,
    0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333, 0x3f4bcccd, 0x3f4f6666, 0x3f530000,
    0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000, 0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666,
    0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
];
const UNSIGNED_BITS: [u32; 256] = [
    0x00000000, 0x34ae7baa, 0x35500998, 0x360e9b38, 0x3692ccf6, 0x36de4c51, 0x3714e5d5, 0x3783126e, 0x37e171a0,
    0x381fe868, 0x384f1800, 0x387e479a, 0x3896bb99, 0x38ae5364, 0x38c5eb31, 0x3906594b, 0x394154ca, 0x397c5049,
    0x399ba5e4, 0x39b923a2, 0x39d6a163, 0x39f41f22, 0x3a08ce71, 0x3a178d50, 0x3a264c30, 0x3a350b10, 0x3a43c9ef,
    0x3a5288d0, 0x3a6147af, 0x3a70068e, 0x3a7ec56e, 0x3a958106, 0x3aba5e35, 0x3adf3b64, 0x3b020c4a, 0x3b147ae1,
    0x3b26e978, 0x3b395810, 0x3b4bc6a7, 0x3b5e3540, 0x3b70a3d7, 0x3b818937, 0x3b8ac082, 0x3b93f7cf, 0x3b9d2f1a,
    0x3ba66666, 0x3baf9db2, 0x3bb8d4fd, 0x3bc20c4a, 0x3bcb4395, 0x3bd47ae1, 0x3bddb22e, 0x3be6e978, 0x3bf020c5,
    0x3bf9580f, 0x3c0147ae, 0x3c05e354, 0x3c0a7ef9, 0x3c0f1aa0, 0x3c13b645, 0x3c1851eb, 0x3c1ced92, 0x3c218937,
    0x3c2f5c2a, 0x3c466667, 0x3c5d70a3, 0x3c747ae2, 0x3c85c28f, 0x3c9147af, 0x3c9ccccd, 0x3ca851eb, 0x3cb3d70b,
    0x3cbf5c29, 0x3ccae147, 0x3cd66667, 0x3ce1eb87, 0x3ced70a3, 0x3cf8f5c3, 0x3d023d70, 0x3d080000, 0x3d0dc28f,
    0x3d13851f, 0x3d1947af, 0x3d1f0a3d, 0x3d24cccd, 0x3d2a8f5c, 0x3d3051eb, 0x3d36147b, 0x3d3bd70a, 0x3d41999a,
    0x3d475c28, 0x3d4d1eb8, 0x3d52e147, 0x3d58a3d7, 0x3d5e6667, 0x3d6428f7, 0x3d69eb87, 0x3d6fae15, 0x3d7570a3,
    0x3d7b3333, 0x3d807ae2, 0x3d835c2a, 0x3d863d71, 0x3d891eb8, 0x3d8c0000, 0x3d8ee148, 0x3d91c290, 0x3d94a3d7,
    0x3d97851f, 0x3d9a6667, 0x3d9d47af, 0x3da028f6, 0x3da30a3e, 0x3da5eb85, 0x3da8cccd, 0x3dabae15, 0x3dae8f5c,
    0x3db170a4, 0x3db451eb, 0x3db73333, 0x3dba147b, 0x3dbcf5c3, 0x3dbfd70b, 0x3dc2b852, 0x3dc5999a, 0x3dc87ae2,
    0x3dcb5c29, 0x3dd40000, 0x3de26666, 0x3df0cccd, 0x3dff3333, 0x3e06cccc, 0x3e0e0000, 0x3e153334, 0x3e1c6666,
    0x3e23999a, 0x3e2acccc, 0x3e320000, 0x3e393334, 0x3e406666, 0x3e47999a, 0x3e4ecccc, 0x3e560000, 0x3e5d3334,
    0x3e646666, 0x3e6b999a, 0x3e72cccc, 0x3e7a0000, 0x3e809999, 0x3e843333, 0x3e87cccd, 0x3e8b6666, 0x3e8f0000,
    0x3e92999a, 0x3e963333, 0x3e99cccc, 0x3e9d6666, 0x3ea10000, 0x3ea4999a, 0x3ea83333, 0x3eabcccc, 0x3eaf6666,
    0x3eb30000, 0x3eb6999a, 0x3eba3333, 0x3ebdcccc, 0x3ec16666, 0x3ec50000, 0x3ec8999a, 0x3ecc3333, 0x3ecfcccc,
    0x3ed36666, 0x3ed70000, 0x3eda999a, 0x3ede3333, 0x3ee1cccc, 0x3ee56666, 0x3ee90000, 0x3eec999a, 0x3ef03333,
    0x3ef3cccc, 0x3ef76666, 0x3efb0000, 0x3efe9999, 0x3f01199a, 0x3f02e666, 0x3f04b333, 0x3f068000, 0x3f084ccc,
    0x3f0a199a, 0x3f0be666, 0x3f0db334, 0x3f0f8000, 0x3f114ccd, 0x3f13199a, 0x3f14e666, 0x3f16b334, 0x3f188000,
    0x3f1a4ccd, 0x3f1c199a, 0x3f1de666, 0x3f1fb334, 0x3f218000, 0x3f234ccd, 0x3f25199a, 0x3f26e666, 0x3f28b334,
    0x3f2a8000, 0x3f2c4ccd, 0x3f2e199a, 0x3f2fe666, 0x3f31b334, 0x3f338000, 0x3f354ccd, 0x3f37199a, 0x3f38e666,
    0x3f3ab334, 0x3f3c8000, 0x3f3e4ccd, 0x3f40199a, 0x3f41e666, 0x3f43b334, 0x3f458000, 0x3f474ccc, 0x3f49199a,
    0x3f4ae666, 0x3f4cb334, 0x3f4e8000, 0x3f504ccc, 0x3f52199a, 0x3f53e666, 0x3f55b334, 0x3f578000, 0x3f594ccc,
    0x3f5b199a, 0x3f5ce666, 0x3f5eb334, 0x3f608000, 0x3f624ccc, 0x3f64199a, 0x3f65e666, 0x3f67b334, 0x3f698000,
    0x3f6b4ccc, 0x3f6d199a, 0x3f6ee666, 0x3f70b334, 0x3f728000, 0x3f744ccc, 0x3f76199a, 0x3f77e666, 0x3f79b334,
    0x3f7b8000, 0x3f7d4ccc, 0x3f7f199a, 0x3f800000,
];

/// The dynamic map for signed values (first moments): 256 sorted entries in [−1, 1].
pub static SIGNED: [f32; MAP_SIZE] = bits_to_map(&SIGNED_BITS);
/// The dynamic map for non-negative values (second moments): 256 sorted entries in [0, 1].
pub static UNSIGNED: [f32; MAP_SIZE] = bits_to_map(&UNSIGNED_BITS);

const fn bits_to_map(bits: &[u32; MAP_SIZE]) -> [f32; MAP_SIZE] {
    let mut out = [0.0f32; MAP_SIZE];
    let mut i = 0;
    while i < MAP_SIZE {
        out[i] = f32::from_bits(bits[i]);
        i += 1;
    }
    out
}

/// The value of `code` in a block of `absmax`: `map[code] · absmax`.
#[inline(always)]
pub fn dequantized(map: &[f32; MAP_SIZE], code: u8, absmax: f32) -> f32 {
    map[code as usize] * absmax
}

/// A quantization map with its lookup table: what quantizing to it needs.
pub struct Quantizer {
    map: [f32; MAP_SIZE],
    lut: Box<[u8; LUT_PADDED]>,
    /// Whether the processor gathers (AVX-512F): see [`Quantizer::lookup`].
    gathers: bool,
}

impl Quantizer {
    /// The table bitsandbytes builds for `map` (which must be sorted, as the dynamic
    /// maps are): bin i, centred on −1 + 2i / 65535, gets the number of midpoints
    /// between neighbouring entries that lie below its centre.
    pub fn new(map: &[f32; MAP_SIZE]) -> Self {
        let mut mid = [0.0f32; MAP_SIZE - 1];
        for (i, m) in mid.iter_mut().enumerate() {
            *m = 0.5 * (map[i] + map[i + 1]);
        }
        let mut lut = Box::new([0u8; LUT_PADDED]);
        let mut code = 0;
        for (i, slot) in lut[..LUT_SIZE].iter_mut().enumerate() {
            let val = -1.0f32 + (2.0 * i as f32) / (LUT_SIZE - 1) as f32;
            while code < MAP_SIZE - 1 && mid[code] < val {
                code += 1;
            }
            *slot = code as u8;
        }
        #[cfg(target_arch = "x86_64")]
        let gathers = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let gathers = false;
        Quantizer { map: *map, lut, gathers }
    }

    /// The quantizer of `map`, built once and kept (bitsandbytes caches four tables
    /// the same way): optimizers use the two dynamic maps, or maps loaded with a state.
    pub fn cached(map: &[f32; MAP_SIZE]) -> Arc<Quantizer> {
        static CACHE: Mutex<Vec<Arc<Quantizer>>> = Mutex::new(Vec::new());
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let same = |q: &Quantizer| q.map.iter().zip(map).all(|(a, b)| a.to_bits() == b.to_bits());
        if let Some(q) = cache.iter().find(|q| same(q)) {
            return q.clone();
        }
        let q = Arc::new(Quantizer::new(map));
        if cache.len() == 8 {
            cache.remove(0);
        }
        cache.push(q.clone());
        q
    }

    /// The map's entries.
    pub fn map(&self) -> &[f32; MAP_SIZE] {
        &self.map
    }

    /// Dequantizes one block: `out[i] = map[codes[i]] · absmax`.
    #[inline(always)]
    pub fn dequantize(&self, codes: &[u8], absmax: f32, out: &mut [f32]) {
        let out = &mut out[..codes.len()];
        for (o, &c) in out.iter_mut().zip(codes) {
            *o = dequantized(&self.map, c, absmax);
        }
    }

    /// Quantizes one block into `codes` and returns its absmax.
    #[inline(always)]
    pub fn quantize(&self, values: &[f32], codes: &mut [u8]) -> f32 {
        let values = &values[..codes.len()];
        let mut lanes = Lanes::default();
        let mut chunks = values.chunks_exact(LANES);
        for c in &mut chunks {
            for (j, &v) in c.iter().enumerate() {
                lanes.add(j, v);
            }
        }
        for (j, &v) in chunks.remainder().iter().enumerate() {
            lanes.add(j, v);
        }
        let absmax = lanes.max();
        if absmax == 0.0 {
            codes.fill(0);
            return absmax;
        }
        let inv = 1.0 / absmax;
        // the bins first (a vector loop), then the table lookups
        let mut bins = [0u32; BLOCK];
        for (b, &v) in bins.iter_mut().zip(values) {
            *b = u32::from(lut_index(v * inv));
        }
        self.lookup(&bins[..codes.len()], codes);
        absmax
    }

    /// `codes[i] = lut[bins[i]]`, each bin below [`LUT_SIZE`]: sixteen at a time by
    /// an AVX-512 gather where the processor has one (the table does not fit a
    /// register, and a byte-by-byte loop was a third of an 8-bit Adam step), else one by
    /// one.
    #[inline(always)]
    fn lookup(&self, bins: &[u32], codes: &mut [u8]) {
        let codes = &mut codes[..bins.len()];
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if self.gathers {
            // SAFETY: the processor has AVX-512F (`gathers`); every bin is below
            // LUT_SIZE (`lut_index`), so each 4-byte read stays in the padded table.
            done = unsafe { gather_codes(&self.lut, bins, codes) };
        }
        for (c, &b) in codes[done..].iter_mut().zip(&bins[done..]) {
            *c = self.lut[b as usize];
        }
    }
}

/// `codes[i] = lut[bins[i]]` for the leading multiple of 16 elements, by AVX-512
/// gathers of 4 bytes at each bin (its code the lowest byte); returns how many it did.
///
/// # Safety
/// The processor has AVX-512F, and every bin is below [`LUT_SIZE`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gather_codes(lut: &[u8; LUT_PADDED], bins: &[u32], codes: &mut [u8]) -> usize {
    use std::arch::x86_64::{__m128i, __m512i, _mm512_cvtepi32_epi8, _mm512_i32gather_epi32, _mm512_loadu_si512};
    let n = bins.len().min(codes.len()) / 16 * 16;
    for i in (0..n).step_by(16) {
        // SAFETY: i + 16 <= n <= both lengths; each bin is below LUT_SIZE, so the
        // 4 bytes read at lut + bin lie within the LUT_SIZE + 3 of the table.
        unsafe {
            let idx = _mm512_loadu_si512(bins.as_ptr().add(i).cast::<__m512i>());
            let words = _mm512_i32gather_epi32::<1>(idx, lut.as_ptr().cast());
            let bytes = _mm512_cvtepi32_epi8(words); // each word's lowest byte
            std::ptr::write_unaligned(codes.as_mut_ptr().add(i).cast::<__m128i>(), bytes);
        }
    }
    n
}

/// Lanes of a block's largest magnitude.
const LANES: usize = 16;

/// A block's largest magnitude, kept in [`LANES`] lanes (element `j` in lane
/// `j % LANES`): a maximum does not depend on the order, so this is exactly
/// bitsandbytes' `max |x|`. NaN is passed over, as its `std::max` passes it over.
#[derive(Clone, Copy, Default)]
struct Lanes([f32; LANES]);

impl Lanes {
    /// Takes `|v|` into lane `j % LANES`.
    #[inline(always)]
    fn add(&mut self, j: usize, v: f32) {
        let (l, a) = (&mut self.0[j % LANES], v.abs());
        *l = if a > *l { a } else { *l }; // one max instruction; NaN keeps the lane
    }

    /// The largest magnitude taken.
    #[inline(always)]
    fn max(&self) -> f32 {
        self.0.iter().fold(0.0f32, |m, &l| if l > m { l } else { m })
    }
}

/// The bin of a value scaled to [−1, 1]: `(clamp(x, −1, 1) + 1) · 0.5 · 65535 + 0.5`,
/// truncated (NaN: bin 0, as bitsandbytes' conversion gives).
#[inline(always)]
#[allow(clippy::manual_clamp)] // `clamp` keeps NaN; this maps it to −1 (bin 0), as the conversion below needs
fn lut_index(x: f32) -> u16 {
    let x = x.max(-1.0).min(1.0);
    let bin = (x + 1.0) * 0.5 * (LUT_SIZE - 1) as f32 + 0.5;
    // SAFETY: `x` is in [−1, 1] (NaN became −1), so `bin` is finite and in
    // [0.5, 65535.5]: representable in i32 after truncation, as the conversion needs.
    // (The checked `as` conversion does not vectorize.)
    (unsafe { bin.to_int_unchecked::<i32>() }) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest map entry by its midpoints, searched directly.
    fn nearest(map: &[f32; MAP_SIZE], x: f32) -> u8 {
        let bin = -1.0f32 + (2.0 * f32::from(lut_index(x))) / (LUT_SIZE - 1) as f32;
        (0..MAP_SIZE - 1).filter(|&i| 0.5 * (map[i] + map[i + 1]) < bin).count() as u8
    }

    #[test]
    fn the_dynamic_maps_are_built_as_bitsandbytes_builds_them() {
        for (map, signed) in [(&SIGNED, true), (&UNSIGNED, false)] {
            assert!(map.windows(2).all(|w| w[0] <= w[1]), "sorted");
            assert_eq!(map[MAP_SIZE - 1], 1.0);
            assert!(map.contains(&0.0));
            // Each exponent contributes the midpoints of k + 1 points spread from 0.1 to 1
            // (float32 rounding aside), times its power of ten.
            let mut want: Vec<f64> = Vec::new();
            for i in 0..7 {
                let k = if signed { 1 << i } else { 1 << (i + 1) };
                let scale = 10f64.powi(i - 6);
                for j in 0..k {
                    let mid = 0.1 + 0.9 * (j as f64 + 0.5) / k as f64;
                    want.push(scale * mid);
                    if signed {
                        want.push(-scale * mid);
                    }
                }
            }
            want.extend([0.0, 1.0]);
            want.resize(MAP_SIZE, 0.0);
            want.sort_by(|a, b| a.partial_cmp(b).unwrap());
            for (i, (&got, &w)) in map.iter().zip(&want).enumerate() {
                assert!((got as f64 - w).abs() <= 1e-6 * w.abs().max(1e-7), "entry {i}: {got} vs {w}");
            }
        }
    }

    #[test]
    fn quantizing_picks_the_nearest_bin_entry_and_round_trips() {
        let q = Quantizer::new(&SIGNED);
        let values: Vec<f32> = (0..BLOCK).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
        let mut codes = vec![0u8; BLOCK];
        let absmax = q.quantize(&values, &mut codes);
        assert_eq!(absmax, values.iter().fold(0.0f32, |m, v| m.max(v.abs())));
        let inv = 1.0 / absmax;
        for (i, (&v, &c)) in values.iter().zip(&codes).enumerate() {
            assert_eq!(c, nearest(&SIGNED, v * inv), "element {i}");
        }
        let mut back = vec![0.0f32; BLOCK];
        q.dequantize(&codes, absmax, &mut back);
        for (v, b) in values.iter().zip(&back) {
            assert!((v - b).abs() <= 0.02 * absmax, "{v} came back as {b}");
        }
        // the block's largest magnitude is exact
        let top = values.iter().position(|v| v.abs() == absmax).unwrap();
        assert_eq!(back[top].abs(), absmax);
    }

    #[test]
    fn a_block_of_zeros_keeps_absmax_zero_and_codes_zero() {
        let q = Quantizer::cached(&UNSIGNED);
        let mut codes = vec![7u8; 5];
        assert_eq!(q.quantize(&[0.0; 5], &mut codes), 0.0);
        assert_eq!(codes, vec![0; 5]);
        let mut out = vec![1.0f32; 5];
        q.dequantize(&codes, 0.0, &mut out);
        assert_eq!(out, vec![0.0; 5]);
        assert!(Arc::ptr_eq(&q, &Quantizer::cached(&UNSIGNED)));
    }
}
