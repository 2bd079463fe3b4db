/* ADD of two same-shape tensors: both inputs rescaled to a common scale with 20 bits of headroom. */
typedef struct {
    int size;
    int32_t in1_offset, in2_offset, left_shift;
    int32_t in1_multiplier, in2_multiplier, out_multiplier;
    int in1_shift, in2_shift, out_shift;
    int32_t out_zp, act_min, act_max;
} tml_add_params;

/* Elementwise, so it may write over either input. */
static void tml_add(const tml_add_params *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    int i;
    for (i = 0; i < p->size; i++) {
        const int32_t x = (int32_t)((uint32_t)(a[i] + p->in1_offset) << p->left_shift);
        const int32_t y = (int32_t)((uint32_t)(b[i] + p->in2_offset) << p->left_shift);
        const int32_t sum = tml_requantize(x, p->in1_multiplier, p->in1_shift)
                            + tml_requantize(y, p->in2_multiplier, p->in2_shift);
        out[i] = tml_output(sum, p->out_multiplier, p->out_shift, p->out_zp, p->act_min, p->act_max);
    }
}
