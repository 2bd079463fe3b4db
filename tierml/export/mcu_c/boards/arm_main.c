/* Cortex-M test driver under QEMU: every input through model_invoke, outputs printed over semihosting.
 * The first inference sits between roi_begin() and roi_end(), the markers the counting plugin watches. */
#include <stdio.h>

#include "model.h"
#include "verify_data.h"

__attribute__((noinline)) void roi_begin(void)
{
    __asm volatile("" ::: "memory");
}

__attribute__((noinline)) void roi_end(void)
{
    __asm volatile("" ::: "memory");
}

int main(void)
{
    static int8_t output[MODEL_OUTPUT_SIZE];
    int n, i;
    for (n = 0; n < TML_COUNT; n++) {
        if (n == 0) {
            roi_begin();
        }
        if (model_invoke(tml_inputs[n], output) != 0) {
            return 1;
        }
        if (n == 0) {
            roi_end();
        }
        printf("out");
        for (i = 0; i < MODEL_OUTPUT_SIZE; i++) {
            printf(" %d", output[i]);
        }
        printf("\n");
    }
    return 0;
}
