/* CONV_2D: NHWC input, OHWI weights, per-channel requantization. */
typedef struct {
    tml_rows rows;            /* depth = k_h * k_w * in_c, one row per output channel */
    int in_h, in_w, in_c, out_h, out_w;
    int k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t in_zp;            /* padding holds the input zero point: the folded bias expects it */
} tml_conv_params;

#if TML_DSP
/* One output pixel's receptive field, padded with the input zero point, as a contiguous patch. */
static void tml_im2col(const tml_conv_params *p, const int8_t *in, int iy0, int ix0, int8_t *col)
{
    const int row_bytes = p->k_w * p->in_c;
    int ky, kx;
    for (ky = 0; ky < p->k_h; ky++) {
        const int iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(col, (int)p->in_zp, (size_t)row_bytes);
        } else if (p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w) {
            memcpy(col, in + (iy * p->in_w + ix0) * p->in_c, (size_t)row_bytes);
        } else {
            for (kx = 0; kx < p->k_w; kx++) {
                const int ix = ix0 + kx * p->dil_w;
                if (ix < 0 || ix >= p->in_w) {
                    memset(col + kx * p->in_c, (int)p->in_zp, (size_t)p->in_c);
                } else {
                    memcpy(col + kx * p->in_c, in + (iy * p->in_w + ix) * p->in_c, (size_t)p->in_c);
                }
            }
        }
        col += row_bytes;
    }
}
#endif

static void tml_conv_pixel(const tml_conv_params *p, const int8_t *in, int oy, int ox, int8_t *col, int8_t *dst)
{
    const int iy0 = oy * p->stride_h - p->pad_top;
    const int ix0 = ox * p->stride_w - p->pad_left;
#if TML_DSP
    if (col == NULL) {  /* 1x1 kernel without padding: the input pixel is the patch */
        tml_dot_rows(&p->rows, in + (iy0 * p->in_w + ix0) * p->in_c, dst);
    } else {
        tml_im2col(p, in, iy0, ix0, col);
        tml_dot_rows(&p->rows, col, dst);
    }
#else
    const tml_rows *r = &p->rows;
    int oc;
    (void)col;
    (void)tml_dot_rows;  /* plain builds use it for fully connected layers only, which a model may lack */
    for (oc = 0; oc < r->rows; oc++) {
        const int8_t *w = r->weights + (size_t)oc * (size_t)r->depth;
        int32_t acc = r->bias[oc];
        int ky, kx, ci;
        for (ky = 0; ky < p->k_h; ky++) {
            const int iy = iy0 + ky * p->dil_h;
            for (kx = 0; kx < p->k_w; kx++, w += p->in_c) {
                const int ix = ix0 + kx * p->dil_w;
                if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
                    const int8_t *x = in + (iy * p->in_w + ix) * p->in_c;
                    for (ci = 0; ci < p->in_c; ci++) {
                        acc += x[ci] * w[ci];
                    }
                } else {
                    for (ci = 0; ci < p->in_c; ci++) {
                        acc += p->in_zp * w[ci];
                    }
                }
            }
        }
        dst[oc] = tml_output(acc, r->multiplier[oc], r->shift[oc], r->out_zp, r->act_min, r->act_max);
    }
#endif
}

/* `col` holds one im2col patch (DSP builds of convs other than unpadded 1x1). `tmp` holds one output
 * pixel when a 1x1 stride-1 unpadded conv runs in place: each output pixel depends on its own input
 * pixel only, and walking backwards when the output is wider keeps every unread input intact. */
static void tml_conv(const tml_conv_params *p, const int8_t *in, int8_t *out, int8_t *col, int8_t *tmp)
{
    const int out_c = p->rows.rows;
    const int pixels = p->out_h * p->out_w;
    const int backwards = tmp != NULL && out_c > p->in_c;
    int n;
    for (n = 0; n < pixels; n++) {
        const int pixel = backwards ? pixels - 1 - n : n;
        int8_t *dst = tmp != NULL ? tmp : out + pixel * out_c;
        tml_conv_pixel(p, in, pixel / p->out_w, pixel % p->out_w, col, dst);
        if (tmp != NULL) {
            memcpy(out + pixel * out_c, tmp, (size_t)out_c);
        }
    }
}
