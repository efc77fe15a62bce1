#include "core/kernels/bf16_gemm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "ggml.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VL_HAVE_BF16_KERNEL 1
// GCC 12 warns about its own _mm512_undefined_* helpers inside the intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "core/kernels/simd_math.h"
#endif

namespace vl::kernels {

void pack_bf16_panels(uint16_t* weights, int64_t k, int64_t n) {
  const int64_t panel_elems = k * kPanel;
  std::vector<uint16_t> rows(static_cast<size_t>(panel_elems));
  for (int64_t p = 0; p < n / kPanel; ++p) {
    uint16_t* panel = weights + p * panel_elems;
    std::memcpy(rows.data(), panel, static_cast<size_t>(panel_elems) * sizeof(uint16_t));
    for (int64_t pair = 0; pair < k / 2; ++pair) {
      uint16_t* out = panel + pair * 2 * kPanel;
      for (int64_t r = 0; r < kPanel; ++r) {
        out[2 * r] = rows[static_cast<size_t>(r * k + 2 * pair)];
        out[2 * r + 1] = rows[static_cast<size_t>(r * k + 2 * pair + 1)];
      }
    }
  }
}

void bf16_from_f16_in_place(uint16_t* values, int64_t n) {
  for (int64_t i = 0; i < n; ++i) values[i] = ggml_fp32_to_bf16(ggml_fp16_to_fp32(values[i])).bits;
}

void pack_key_panels(const float* k, int64_t row_stride, int64_t n_kv, int64_t head_dim, int64_t padded_kv,
                     HalfConverter convert, std::vector<uint16_t>& panels, std::vector<uint16_t>& row) {
  panels.assign(static_cast<size_t>(padded_kv * head_dim), 0);
  row.resize(static_cast<size_t>(head_dim));
  auto* panel_pairs = reinterpret_cast<uint32_t*>(panels.data());
  const auto* pairs = reinterpret_cast<const uint32_t*>(row.data());
  for (int64_t key = 0; key < n_kv; ++key) {
    convert(k + key * row_stride, row.data(), head_dim);
    uint32_t* panel = panel_pairs + (key / kPanel) * (head_dim / 2) * kPanel + key % kPanel;
    for (int64_t j = 0; j < head_dim / 2; ++j) panel[j * kPanel] = pairs[j];
  }
}

void pack_value_panels(const float* v, int64_t row_stride, int64_t n_kv, int64_t head_dim, int64_t padded_kv,
                       int64_t padded_dim, HalfConverter convert, std::vector<uint16_t>& panels,
                       std::vector<uint16_t>& row) {
  panels.assign(static_cast<size_t>(padded_kv * padded_dim), 0);
  row.resize(static_cast<size_t>(head_dim));
  for (int64_t key = 0; key < n_kv; ++key) {
    convert(v + key * row_stride, row.data(), head_dim);
    const int64_t pair = key / 2, half = key % 2;
    for (int64_t d = 0; d < head_dim; ++d) {
      panels[static_cast<size_t>(((d / kPanel) * (padded_kv / 2) + pair) * 2 * kPanel + 2 * (d % kPanel) + half)] =
          row[static_cast<size_t>(d)];
    }
  }
}

#ifdef VL_HAVE_BF16_KERNEL

#define VL_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// One tile: rows [0, ROWS) of x times one packed panel -> ROWS x kPanel outputs.
template <int ROWS>
VL_TARGET static void gemm_tile(const uint16_t* x, int64_t x_stride, const uint16_t* panel, int64_t k_pairs,
                                const GemmOutput& out) {
  __m512 acc[ROWS][2];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const int32_t* pairs = reinterpret_cast<const int32_t*>(x);  // one bf16 pair = one int32
  const int64_t pair_stride = x_stride / 2;
  for (int64_t j = 0; j < k_pairs; ++j) {
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(panel + j * 2 * kPanel);
    const __m512bh w1 = (__m512bh)_mm512_loadu_si512(panel + j * 2 * kPanel + 32);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(pairs[r * pair_stride + j]);
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, w0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, w1);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) finish_tile_row(out, r, acc[r][0], acc[r][1]);
}

constexpr int kTileRows = 12;

using TileFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, const GemmOutput&);

template <int... R>
static constexpr std::array<TileFn, sizeof...(R) + 1> tile_table(std::integer_sequence<int, R...>) {
  return {nullptr, &gemm_tile<R + 1>...};
}

// Rows [m0, m1) of the output for panels [p0, p1).
VL_TARGET static void gemm_block(const Bf16GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  static constexpr auto tiles = tile_table(std::make_integer_sequence<int, kTileRows>());
  const int64_t k_pairs = a.k / 2;
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* panel = a.w + p * a.k * kPanel;
    for (int64_t m = m0; m < m1; m += kTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kTileRows, m1 - m));
      tiles[rows](a.x + m * a.x_stride, a.x_stride, panel, k_pairs, output_tile(a.out, m, p * kPanel));
    }
  }
}

void bf16_gemm(const Bf16GemmArgs& args, int ith, int nth) {
  const GemmShare share = gemm_share(args.m, args.n / kPanel, kTileRows, ith, nth);
  gemm_block(args, share.m0, share.m1, share.p0, share.p1);
}

// ---------------------------------------------------------------------------------------------
// Attention: per (item, head), S = Q Kᵀ and O = P V as two products of the tiles above, with K
// and V packed into panels (keys padded to whole panels, their scores masked out).

// n f32 -> bf16, rounding to nearest even.
VL_TARGET void bf16_from_f32(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
  }
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(dst + i, mask, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i)));
  }
}

// Per-thread scratch of one (item, head): all of it stays in L2 at ViT sizes (~0.7 MB).
struct AttentionScratch {
  std::vector<uint16_t> q, k_panels, v_panels, probs, row;
  std::vector<float> scores, context;
};

// probs = softmax(scale · scores) over the first n_kv columns, as bf16; padding columns stay 0.
VL_TARGET static void softmax_row(const float* scores, int64_t n_kv, float scale, uint16_t* probs) {
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  __m512 max = neg_inf;
  for (int64_t j = 0; j < n_kv; j += 16) {
    const __mmask16 mask = n_kv - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n_kv - j)) - 1);
    max = _mm512_max_ps(max, _mm512_mask_loadu_ps(neg_inf, mask, scores + j));
  }
  const __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(max) * scale), vscale = _mm512_set1_ps(scale);
  // exponentials twice (sum, then normalised values) rather than a buffer of them
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n_kv; j += 16) {
    const __mmask16 mask = n_kv - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n_kv - j)) - 1);
    const __m512 x = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(mask, scores + j), vscale, shift);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(mask, exp_ps(x)));
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (int64_t j = 0; j < n_kv; j += 16) {
    const __mmask16 mask = n_kv - j >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n_kv - j)) - 1);
    const __m512 x = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(mask, scores + j), vscale, shift);
    const __m512 p = _mm512_mul_ps(exp_ps(x), inv);
    _mm256_mask_storeu_epi16(probs + j, mask, (__m256i)_mm512_cvtneps_pbh(p));
  }
}

// rows [0, m) of x (bf16, stride x_stride) times `panels` packed panels of k_pairs -> y (f32).
VL_TARGET static void gemm_panels(const uint16_t* x, int64_t x_stride, int64_t m, const uint16_t* w, int64_t k_pairs,
                                  int64_t panels, float* y, int64_t y_stride) {
  static constexpr auto tiles = tile_table(std::make_integer_sequence<int, kTileRows>());
  GemmOutput out;
  out.y = y;
  out.y_stride = y_stride;
  for (int64_t p = 0; p < panels; ++p) {
    for (int64_t r = 0; r < m; r += kTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kTileRows, m - r));
      tiles[rows](x + r * x_stride, x_stride, w + p * k_pairs * 2 * kPanel, k_pairs, output_tile(out, r, p * kPanel));
    }
  }
}

VL_TARGET static void attention_head(const Bf16AttentionArgs& a, int64_t item, int64_t head, AttentionScratch& s) {
  const int64_t hd = a.head_dim, padded_kv = round_up(a.n_kv, kPanel), padded_dim = round_up(hd, kPanel);
  const float* q = a.q.data + item * a.q.batch_stride + head * hd;
  s.q.resize(static_cast<size_t>(a.n_q * hd));
  for (int64_t i = 0; i < a.n_q; ++i) bf16_from_f32(q + i * a.q.row_stride, s.q.data() + i * hd, hd);
  pack_key_panels(a.k.data + item * a.k.batch_stride + head * hd, a.k.row_stride, a.n_kv, hd, padded_kv, bf16_from_f32,
                  s.k_panels, s.row);
  pack_value_panels(a.v.data + item * a.v.batch_stride + head * hd, a.v.row_stride, a.n_kv, hd, padded_kv, padded_dim,
                    bf16_from_f32, s.v_panels, s.row);

  s.scores.resize(static_cast<size_t>(a.n_q * padded_kv));
  gemm_panels(s.q.data(), hd, a.n_q, s.k_panels.data(), hd / 2, padded_kv / kPanel, s.scores.data(), padded_kv);
  s.probs.assign(static_cast<size_t>(a.n_q * padded_kv), 0);
  for (int64_t i = 0; i < a.n_q; ++i) {
    softmax_row(s.scores.data() + i * padded_kv, a.n_kv, a.scale, s.probs.data() + i * padded_kv);
  }
  s.context.resize(static_cast<size_t>(a.n_q * padded_dim));
  gemm_panels(s.probs.data(), padded_kv, a.n_q, s.v_panels.data(), padded_kv / 2, padded_dim / kPanel, s.context.data(),
              padded_dim);

  const int64_t width = a.heads * hd;
  float* out = a.out + item * a.n_q * width + head * hd;
  for (int64_t i = 0; i < a.n_q; ++i) {
    std::memcpy(out + i * width, s.context.data() + i * padded_dim, static_cast<size_t>(hd) * sizeof(float));
  }
}

void bf16_attention(const Bf16AttentionArgs& args, int ith, int nth) {
  thread_local AttentionScratch scratch;
  for (int64_t task = ith; task < args.batch * args.heads; task += nth) {
    attention_head(args, task / args.heads, task % args.heads, scratch);
  }
}

#else

void bf16_gemm(const Bf16GemmArgs&, int, int) {}
void bf16_attention(const Bf16AttentionArgs&, int, int) {}
void bf16_from_f32(const float*, uint16_t*, int64_t) {}

#endif

}  // namespace vl::kernels
