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

/* One output channel at a time. With `tmp` (out_h * out_w bytes) it runs in place: channel c is
 * computed into tmp, then written over input channel c, which nothing reads again. */
static void tml_depthwise(const tml_depthwise_params *p, const int8_t *in, int8_t *out, int8_t *tmp)
{
    int oc;
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
