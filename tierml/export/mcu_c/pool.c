/* MAX_POOL_2D / AVERAGE_POOL_2D: input and output share scale and zero point; padding is ignored. */
typedef struct {
    int in_h, in_w, channels, out_h, out_w;
    int k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} tml_pool_params;

/* Raster order: without padding every window of a later output starts at or after the current pixel,
 * so both pools may write over their input. */
static void tml_pool(const tml_pool_params *p, const int8_t *in, int8_t *out, int average)
{
    int oy, ox, c;
    for (oy = 0; oy < p->out_h; oy++) {
        for (ox = 0; ox < p->out_w; ox++) {
            const int iy0 = oy * p->stride_h - p->pad_top;
            const int ix0 = ox * p->stride_w - p->pad_left;
            const int y0 = iy0 < 0 ? -iy0 : 0;
            const int x0 = ix0 < 0 ? -ix0 : 0;
            const int y1 = p->k_h < p->in_h - iy0 ? p->k_h : p->in_h - iy0;
            const int x1 = p->k_w < p->in_w - ix0 ? p->k_w : p->in_w - ix0;
            for (c = 0; c < p->channels; c++) {
                int32_t acc = average ? 0 : -128;
                int32_t count = (y1 - y0) * (x1 - x0);
                int ky, kx;
                for (ky = y0; ky < y1; ky++) {
                    for (kx = x0; kx < x1; kx++) {
                        const int32_t v = in[((iy0 + ky) * p->in_w + ix0 + kx) * p->channels + c];
                        if (average) {
                            acc += v;
                        } else if (v > acc) {
                            acc = v;
                        }
                    }
                }
                if (average) {  /* TFLM rounds the mean half away from zero */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                acc = acc < p->act_min ? p->act_min : acc;
                acc = acc > p->act_max ? p->act_max : acc;
                out[(oy * p->out_w + ox) * p->channels + c] = (int8_t)acc;
            }
        }
    }
}
