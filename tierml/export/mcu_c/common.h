/* tierml int8 runtime: TensorFlow Lite Micro's int8 arithmetic, no allocation, no floating point.
 *
 * Requantization is gemmlowp's double rounding: SaturatingRoundingDoublingHighMul by a Q31
 * multiplier, then RoundingDivideByPOT, so every output is bit-exact with TFLM's reference kernels.
 * Cortex-M4/M7 builds (__ARM_FEATURE_DSP) use SXTB16/SMLAD kernels unless TML_PLAIN_C is defined.
 */
#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && !defined(TML_PLAIN_C)
#define TML_DSP 1
#include <arm_acle.h>
#else
#define TML_DSP 0
#endif

/* gemmlowp SaturatingRoundingDoublingHighMul: (a * b) / 2^31 rounded to nearest, saturating -1 * -1. */
static inline int32_t tml_high_mul(int32_t a, int32_t b)
{
    int64_t ab;
    int32_t nudge;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero. */
static inline int32_t tml_round_shift(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier: x * multiplier * 2^shift with double rounding. */
static inline int32_t tml_requantize(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return tml_round_shift(tml_high_mul((int32_t)((uint32_t)x << left), multiplier), right);
}

/* Accumulator -> int8 output: requantize, add the output zero point, clamp to the fused activation. */
static inline int8_t tml_output(int32_t acc, int32_t multiplier, int shift, int32_t out_zp, int32_t act_min,
                                int32_t act_max)
{
    int32_t v = tml_requantize(acc, multiplier, shift) + out_zp;
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return (int8_t)v;
}

#if TML_DSP
/* Four int8 values from memory (Cortex-M4/M7 allow unaligned word loads). */
static inline int32_t tml_load4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int32_t tml_ror8(int32_t v)
{
    return (int32_t)(((uint32_t)v >> 8) | ((uint32_t)v << 24));
}
#endif
