/* DEPTHWISE_CONV_2D: NHWC input, [k_h][k_w][out_c] weights, per-channel requantization. */
typedef struct {
    int in_h, in_w, in_c, out_h, out_w, out_c, depth_multiplier;
    int k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t in_zp, out_zp, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias;      /* with -input_zero_point * sum(channel weights) folded in */
    const int32_t *multiplier;
    const int8_t *shift;
} tml_depthwise_params;

#if TML_DSP
/* Four adjacent channels per pass (depth multiplier 1, channels a multiple of 4): one word load brings
 * four channels of a tap, SXTB16 splits them into (c, c+2) and (c+1, c+3), SMLABB/SMLATT add one
 * product per channel. Padding taps read the input zero point, as the folded bias expects. With `tmp`
 * (4 * out_h * out_w bytes) it runs in place: a group is written back only after all its pixels. */
static void tml_depthwise4(const tml_depthwise_params *p, const int8_t *in, int8_t *out, int8_t *tmp)
{
    const int32_t zp4 = (int32_t)(((uint32_t)p->in_zp & 0xFFu) * 0x01010101u);
    const int pixels = p->out_h * p->out_w;
    int c, n, k;
    for (c = 0; c < p->out_c; c += 4) {
        for (n = 0; n < pixels; n++) {
            const int iy0 = (n / p->out_w) * p->stride_h - p->pad_top;
            const int ix0 = (n % p->out_w) * p->stride_w - p->pad_left;
            const int8_t *w = p->weights + c;
            int32_t acc[4];
            int8_t *dst = tmp != NULL ? tmp + 4 * n : out + n * p->out_c + c;
            int ky, kx;
            acc[0] = p->bias[c];
            acc[1] = p->bias[c + 1];
            acc[2] = p->bias[c + 2];
            acc[3] = p->bias[c + 3];
            for (ky = 0; ky < p->k_h; ky++) {
                const int iy = iy0 + ky * p->dil_h;
                for (kx = 0; kx < p->k_w; kx++, w += p->out_c) {
                    const int ix = ix0 + kx * p->dil_w;
                    const int32_t xv = (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w)
                                           ? tml_load4(in + (iy * p->in_w + ix) * p->in_c + c) : zp4;
                    const int32_t wv = tml_load4(w);
                    const int32_t x_even = __sxtb16(xv), x_odd = __sxtb16(tml_ror8(xv));
                    const int32_t w_even = __sxtb16(wv), w_odd = __sxtb16(tml_ror8(wv));
                    acc[0] = __smlabb(x_even, w_even, acc[0]);
                    acc[2] = __smlatt(x_even, w_even, acc[2]);
                    acc[1] = __smlabb(x_odd, w_odd, acc[1]);
                    acc[3] = __smlatt(x_odd, w_odd, acc[3]);
                }
            }
            for (k = 0; k < 4; k++) {
                dst[k] = tml_output(acc[k], p->multiplier[c + k], p->shift[c + k], p->out_zp, p->act_min,
                                    p->act_max);
            }
        }
        if (tmp != NULL) {
            for (n = 0; n < pixels; n++) {
                memcpy(out + n * p->out_c + c, tmp + 4 * n, 4);
            }
        }
    }
}
#endif

/* One output channel at a time. With `tmp` (out_h * out_w bytes) it runs in place: channel c is
 * computed into tmp, then written over input channel c, which nothing reads again. */
static void tml_depthwise(const tml_depthwise_params *p, const int8_t *in, int8_t *out, int8_t *tmp)
{
    int oc;
#if TML_DSP
    if (p->depth_multiplier == 1 && p->out_c % 4 == 0) {
        tml_depthwise4(p, in, out, tmp);
        return;
    }
#endif
    for (oc = 0; oc < p->out_c; oc++) {
        const int ic = oc / p->depth_multiplier;
        int oy, ox, n;
        for (oy = 0; oy < p->out_h; oy++) {
            for (ox = 0; ox < p->out_w; ox++) {
                const int iy0 = oy * p->stride_h - p->pad_top;
                const int ix0 = ox * p->stride_w - p->pad_left;
                int32_t acc = p->bias[oc];
                int8_t v;
                int ky, kx;
                for (ky = 0; ky < p->k_h; ky++) {
                    const int iy = iy0 + ky * p->dil_h;
                    for (kx = 0; kx < p->k_w; kx++) {
                        const int ix = ix0 + kx * p->dil_w;
                        const int32_t x = (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w)
                                              ? in[(iy * p->in_w + ix) * p->in_c + ic] : p->in_zp;
                        acc += x * p->weights[(ky * p->k_w + kx) * p->out_c + oc];
                    }
                }
                v = tml_output(acc, p->multiplier[oc], p->shift[oc], p->out_zp, p->act_min, p->act_max);
                if (tmp != NULL) {
                    tmp[oy * p->out_w + ox] = v;
                } else {
                    out[(oy * p->out_w + ox) * p->out_c + oc] = v;
                }
            }
        }
        if (tmp != NULL) {
            for (n = 0; n < p->out_h * p->out_w; n++) {
                out[n * p->out_c + oc] = tmp[n];
            }
        }
    }
}
