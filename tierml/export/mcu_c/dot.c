/* Rows of int8 weights times one int8 vector, requantized per row (fully connected, im2col conv). */
typedef struct {
    int depth;                /* elements per row */
    int rows;                 /* output channels */
    const int8_t *weights;    /* [rows][depth] */
    const int32_t *bias;      /* per row, with -input_zero_point * sum(row) folded in */
    const int32_t *multiplier;
    const int8_t *shift;
    int32_t out_zp;
    int32_t act_min;
    int32_t act_max;
} tml_rows;

#if TML_DSP
/* acc + four int8 weights . four int8 inputs, the inputs already split into even and odd halves. */
static inline int32_t tml_mac4(int32_t acc, const int8_t *w, int32_t x_even, int32_t x_odd)
{
    const int32_t wv = tml_load4(w);
    acc = __smlad(__sxtb16(wv), x_even, acc);
    return __smlad(__sxtb16(tml_ror8(wv)), x_odd, acc);
}
#endif

static void tml_dot_rows(const tml_rows *p, const int8_t *x, int8_t *out)
{
    const int d = p->depth;
    const int8_t *w = p->weights;
    int r = 0;
#if TML_DSP
    /* Four rows at a time share each SXTB16 of the input: 16 MACs per 8 SMLADs. */
    for (; r + 3 < p->rows; r += 4, w += 4 * d) {
        int32_t acc0 = p->bias[r], acc1 = p->bias[r + 1], acc2 = p->bias[r + 2], acc3 = p->bias[r + 3];
        int i = 0;
        for (; i + 4 <= d; i += 4) {
            const int32_t xv = tml_load4(x + i);
            const int32_t x_even = __sxtb16(xv);
            const int32_t x_odd = __sxtb16(tml_ror8(xv));
            acc0 = tml_mac4(acc0, w + i, x_even, x_odd);
            acc1 = tml_mac4(acc1, w + d + i, x_even, x_odd);
            acc2 = tml_mac4(acc2, w + 2 * d + i, x_even, x_odd);
            acc3 = tml_mac4(acc3, w + 3 * d + i, x_even, x_odd);
        }
        for (; i < d; i++) {
            acc0 += x[i] * w[i];
            acc1 += x[i] * w[d + i];
            acc2 += x[i] * w[2 * d + i];
            acc3 += x[i] * w[3 * d + i];
        }
        out[r] = tml_output(acc0, p->multiplier[r], p->shift[r], p->out_zp, p->act_min, p->act_max);
        out[r + 1] = tml_output(acc1, p->multiplier[r + 1], p->shift[r + 1], p->out_zp, p->act_min, p->act_max);
        out[r + 2] = tml_output(acc2, p->multiplier[r + 2], p->shift[r + 2], p->out_zp, p->act_min, p->act_max);
        out[r + 3] = tml_output(acc3, p->multiplier[r + 3], p->shift[r + 3], p->out_zp, p->act_min, p->act_max);
    }
    for (r = p->rows & ~3; r < p->rows; r++, w += d) {  /* the last rows % 4 */
        int32_t acc = p->bias[r];
        int i = 0;
        for (; i + 4 <= d; i += 4) {
            const int32_t xv = tml_load4(x + i);
            acc = tml_mac4(acc, w + i, __sxtb16(xv), __sxtb16(tml_ror8(xv)));
        }
        for (; i < d; i++) {
            acc += x[i] * w[i];
        }
        out[r] = tml_output(acc, p->multiplier[r], p->shift[r], p->out_zp, p->act_min, p->act_max);
    }
#else
    for (; r < p->rows; r++, w += d) {
        int32_t acc = p->bias[r];
        int i;
        for (i = 0; i < d; i++) {
            acc += x[i] * w[i];
        }
        out[r] = tml_output(acc, p->multiplier[r], p->shift[r], p->out_zp, p->act_min, p->act_max);
    }
#endif
}
