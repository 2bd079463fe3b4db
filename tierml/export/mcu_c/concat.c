/* CONCATENATION: inputs share the output's scale and zero point, so it is a copy. */
static void tml_concat(int outer, int count, const int8_t *const *inputs, const int *inner, int8_t *out)
{
    int o, i;
    for (o = 0; o < outer; o++) {
        for (i = 0; i < count; i++) {
            memcpy(out, inputs[i] + o * inner[i], (size_t)inner[i]);
            out += inner[i];
        }
    }
}
