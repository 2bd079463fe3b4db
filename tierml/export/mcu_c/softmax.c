/* SOFTMAX with TFLM's int8 semantics: gemmlowp fixed-point exp and reciprocal, output scale 1/256
 * and zero point -128. Fixed-point formats are noted as Qm (m integer bits of a 32-bit value). */
typedef struct {
    int rows, depth;
    int32_t input_multiplier;
    int input_left_shift;
    int32_t diff_min;
} tml_softmax_params;

/* gemmlowp SaturatingRoundingMultiplyByPOT: x * 2^exponent, saturating up, rounding down. */
static inline int32_t tml_pot(int32_t x, int exponent)
{
    if (exponent > 0) {
        const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << exponent);
    }
    return exponent < 0 ? tml_round_shift(x, -exponent) : x;
}

/* exp(a) for a in [-1/4, 0), a and result Q0: Taylor expansion around -1/8. */
static int32_t tml_exp_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = tml_high_mul(x, x);
    const int32_t x3 = tml_high_mul(x2, x);
    const int32_t x4 = tml_high_mul(x2, x2);
    const int32_t x4_over_4 = tml_pot(x4, -2);
    const int32_t poly = tml_pot(tml_high_mul(x4_over_4 + x3, one_third) + x2, -1);
    return exp_minus_one_eighth + tml_high_mul(exp_minus_one_eighth, x + poly);
}

/* exp(a) for a <= 0, a Q5 and result Q0: the fraction modulo 1/4 by Taylor, the rest by a barrel of
 * constant factors exp(-2^k). */
static int32_t tml_exp_negative(int32_t a)
{
    static const int32_t factors[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t quarter = 1 << 24;
    const int32_t a_mod = (a & (quarter - 1)) - quarter;
    const int32_t remainder = a_mod - a;
    int32_t result = tml_exp_quarter(tml_pot(a_mod, 5));
    int k;
    for (k = 0; k < 7; k++) {
        if (remainder & ((int32_t)1 << (24 + k))) {
            result = tml_high_mul(result, factors[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), Q0 in and out: three Newton-Raphson steps in Q2. */
static int32_t tml_one_over_one_plus(int32_t a)
{
    const int32_t half_denominator = (int32_t)(((int64_t)a + INT32_MAX + 1) / 2);
    const int32_t one_q2 = 1 << 29;
    int32_t x = 1515870810 + tml_high_mul(half_denominator, -1010580540);
    int i;
    for (i = 0; i < 3; i++) {
        const int32_t one_minus = one_q2 - tml_high_mul(half_denominator, x);
        x = x + tml_pot(tml_high_mul(x, one_minus), 2);
    }
    return tml_pot(x, 1);
}

static int tml_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

/* Reads a whole row before writing it, so it may run in place. */
static void tml_softmax(const tml_softmax_params *p, const int8_t *in, int8_t *out)
{
    int r, c;
    for (r = 0; r < p->rows; r++, in += p->depth, out += p->depth) {
        int32_t max = -128, sum = 0, scale;
        int headroom, bits_over_unit, exponent;
        for (c = 0; c < p->depth; c++) {
            max = in[c] > max ? in[c] : max;
        }
        for (c = 0; c < p->depth; c++) {
            const int32_t diff = in[c] - max;
            if (diff >= p->diff_min) {
                const int32_t scaled = tml_high_mul((int32_t)((uint32_t)diff << p->input_left_shift),
                                                    p->input_multiplier);
                sum += tml_pot(tml_exp_negative(scaled), -12);  /* Q0 -> Q12 */
            }
        }
        headroom = tml_leading_zeros((uint32_t)sum);
        bits_over_unit = 12 - headroom;
        scale = tml_one_over_one_plus((int32_t)(((uint32_t)sum << headroom) - ((uint32_t)1 << 31)));
        exponent = bits_over_unit + 31 - 8;
        for (c = 0; c < p->depth; c++) {
            const int32_t diff = in[c] - max;
            int32_t v = -128;
            if (diff >= p->diff_min) {
                const int32_t scaled = tml_high_mul((int32_t)((uint32_t)diff << p->input_left_shift),
                                                    p->input_multiplier);
                v = tml_round_shift(tml_high_mul(scale, tml_exp_negative(scaled)), exponent) - 128;
                v = v > 127 ? 127 : (v < -128 ? -128 : v);
            }
            out[c] = (int8_t)v;
        }
    }
}
