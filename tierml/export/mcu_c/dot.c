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

static void tml_dot_rows(const tml_rows *p, const int8_t *x, int8_t *out)
{
    int r = 0;
#if TML_DSP
    /* Two rows at a time share each SXTB16 of the input: 8 MACs per 2 SMLAD pairs. */
    for (; r + 1 < p->rows; r += 2) {
        const int8_t *w0 = p->weights + r * p->depth;
        const int8_t *w1 = w0 + p->depth;
        int32_t acc0 = p->bias[r];
        int32_t acc1 = p->bias[r + 1];
        int i = 0;
        for (; i + 4 <= p->depth; i += 4) {
            const int32_t xv = tml_load4(x + i);
            const int32_t x_even = __sxtb16(xv);
            const int32_t x_odd = __sxtb16(tml_ror8(xv));
            const int32_t wa = tml_load4(w0 + i);
            const int32_t wb = tml_load4(w1 + i);
            acc0 = __smlad(__sxtb16(wa), x_even, acc0);
            acc0 = __smlad(__sxtb16(tml_ror8(wa)), x_odd, acc0);
            acc1 = __smlad(__sxtb16(wb), x_even, acc1);
            acc1 = __smlad(__sxtb16(tml_ror8(wb)), x_odd, acc1);
        }
        for (; i < p->depth; i++) {
            acc0 += x[i] * w0[i];
            acc1 += x[i] * w1[i];
        }
        out[r] = tml_output(acc0, p->multiplier[r], p->shift[r], p->out_zp, p->act_min, p->act_max);
        out[r + 1] = tml_output(acc1, p->multiplier[r + 1], p->shift[r + 1], p->out_zp, p->act_min, p->act_max);
    }
#endif
    for (; r < p->rows; r++) {
        const int8_t *w = p->weights + r * p->depth;
        int32_t acc = p->bias[r];
        int i;
        for (i = 0; i < p->depth; i++) {
            acc += x[i] * w[i];
        }
        out[r] = tml_output(acc, p->multiplier[r], p->shift[r], p->out_zp, p->act_min, p->act_max);
    }
}
