/* An SDPA implementation outside Python, for the export -> compute elsewhere -> verify-outputs
 * workflow of docs/non-python.md. It reads only .npy files (as `attnconf golden export` writes
 * them) and writes one .npy output; it links against nothing but libc and libm.
 *
 *   sdpa_npy OUT.npy Q.npy K.npy V.npy [--mask M.npy] [--causal top_left|bottom_right]
 *            [--scale S] [--dtype float64|float32] [--lse LSE.npy] [--bug scale|lse-base2]
 *   sdpa_npy --merge OUT.npy LSE.npy OUTPUTS.npy LSES.npy [--dtype float64|float32] [--bug nan-empty]
 *
 * --lse also writes each row's log-sum-exp (B,H,L) (spec sdpa.lse.*: natural log, −inf for a row
 * with no key). --merge merges N states, OUTPUTS (N,B,H,L,Ev) and LSES (N,B,H,L), into one (spec
 * sdpa.merge.*: max subtracted, empty states weight 0, every state empty -> 0 and −inf).
 *
 * Shapes: Q (B,H,L,E), K (B,Hkv,S,E), V (B,Hkv,S,Ev) -> OUT (B,H,L,Ev); query head h uses kv
 * head h / (H/Hkv). The mask (bool: 1 = takes part, or float: added) broadcasts to (B,H,L,S).
 * A fully-masked row gives 0. Deliberately wrong builds that verify-outputs must fail: `--bug
 * scale` multiplies the scale by 1.001, `--bug lse-base2` writes the LSE in base 2, `--bug
 * nan-empty` merges without guarding rows whose states are all empty (NaN).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int ndim;
    long shape[8];
    char kind;        /* 'f' float, 'b' bool */
    int itemsize;
    double *data;     /* converted to double */
} Array;

static void die(const char *what, const char *path) {
    fprintf(stderr, "sdpa_npy: %s: %s\n", what, path);
    exit(2);
}

static long numel(const Array *a) {
    long n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
    return n;
}

/* Parse the .npy header: descr, fortran_order, shape (format spec: numpy.lib.format). */
static Array read_npy(const char *path) {
    Array a = {0};
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open", path);
    unsigned char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6) != 0) die("not an .npy file", path);
    uint32_t hlen = 0;
    if (magic[6] == 1) {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) die("truncated header", path);
        hlen = b[0] | (b[1] << 8);
    } else {
        unsigned char b[4];
        if (fread(b, 1, 4, f) != 4) die("truncated header", path);
        hlen = b[0] | (b[1] << 8) | (b[2] << 16) | ((uint32_t)b[3] << 24);
    }
    char *header = calloc(hlen + 1, 1);
    if (fread(header, 1, hlen, f) != hlen) die("truncated header", path);
    char *descr = strstr(header, "'descr':");
    if (!descr) die("no descr", path);
    descr = strchr(descr + 8, '\'') + 1;                      /* e.g. <f8 */
    if (descr[0] == '>') die("big-endian data is not supported", path);
    a.kind = descr[1];
    a.itemsize = atoi(descr + 2);
    if (strstr(header, "'fortran_order': True")) die("Fortran order is not supported", path);
    char *shape = strchr(strstr(header, "'shape':"), '(') + 1;
    while (*shape && *shape != ')') {
        while (*shape == ' ' || *shape == ',') shape++;
        if (*shape == ')') break;
        a.shape[a.ndim++] = strtol(shape, &shape, 10);
    }
    long n = numel(&a);
    a.data = malloc(sizeof(double) * (n ? n : 1));
    unsigned char *raw = malloc(a.itemsize * (n ? n : 1));
    if ((long)fread(raw, a.itemsize, n, f) != n) die("truncated data", path);
    for (long i = 0; i < n; i++) {
        if (a.kind == 'f' && a.itemsize == 8) { double v; memcpy(&v, raw + 8 * i, 8); a.data[i] = v; }
        else if (a.kind == 'f' && a.itemsize == 4) { float v; memcpy(&v, raw + 4 * i, 4); a.data[i] = v; }
        else if (a.kind == 'b' && a.itemsize == 1) a.data[i] = raw[i] ? 1.0 : 0.0;
        else die("unsupported dtype (want <f8, <f4 or |b1)", path);
    }
    free(raw);
    free(header);
    fclose(f);
    return a;
}

static void write_npy(const char *path, const double *data, const long *shape, int ndim, int f32) {
    char dims[256] = "";
    for (int i = 0; i < ndim; i++) {
        char d[32];
        snprintf(d, sizeof d, "%ld, ", shape[i]);
        strcat(dims, d);
    }
    if (ndim > 1) dims[strlen(dims) - 2] = '\0';          /* (a, b) but (a,) for one dim */
    else if (ndim == 1) dims[strlen(dims) - 1] = '\0';
    char header[512];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                       f32 ? "<f4" : "<f8", dims);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;                       /* header padded to 64 bytes */
    FILE *f = fopen(path, "wb");
    if (!f) die("cannot write", path);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    uint16_t hl = (uint16_t)(len + pad + 1);
    pre[8] = hl & 0xff;
    pre[9] = hl >> 8;
    fwrite(pre, 1, 10, f);
    fwrite(header, 1, len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    long n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    for (long i = 0; i < n; i++) {
        if (f32) { float v = (float)data[i]; fwrite(&v, 4, 1, f); }
        else fwrite(&data[i], 8, 1, f);
    }
    fclose(f);
}

/* Index of mask element (b,h,l,s) under broadcasting of a mask of ndim <= 4 to (B,H,L,S). */
static long mask_index(const Array *m, long b, long h, long l, long s) {
    long idx[4] = {b, h, l, s}, off = 0, stride = 1;
    for (int i = 3, j = m->ndim - 1; j >= 0; i--, j--) {
        long dim = m->shape[j];
        off += (dim == 1 ? 0 : idx[i]) * stride;
        stride *= dim;
    }
    return off;
}

/* Merge N states (sdpa.merge.definition): M = max lse_n, w_n = exp(lse_n - M), out = sum w o / sum w. */
static int merge_main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: sdpa_npy --merge OUT.npy LSE.npy OUTPUTS.npy LSES.npy [--dtype float64|float32] "
                        "[--bug nan-empty]\n");
        return 2;
    }
    Array o = read_npy(argv[4]), ls = read_npy(argv[5]);
    int f32 = 0, nan_empty = 0;
    for (int i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "--dtype")) f32 = !strcmp(argv[++i], "float32");
        else if (!strcmp(argv[i], "--bug")) nan_empty = !strcmp(argv[++i], "nan-empty");
    }
    long N = o.shape[0], R = o.shape[1] * o.shape[2] * o.shape[3], Ev = o.shape[4];
    double *out = calloc(R * Ev, sizeof(double)), *lse = malloc(sizeof(double) * R);
    for (long r = 0; r < R; r++) {
        double mx = -INFINITY, z = 0;
        for (long n = 0; n < N; n++) if (ls.data[n * R + r] > mx) mx = ls.data[n * R + r];
        if (mx == -INFINITY && !nan_empty) { lse[r] = -INFINITY; continue; }   /* every state empty */
        for (long n = 0; n < N; n++) {
            double w = exp(ls.data[n * R + r] - mx);
            if (ls.data[n * R + r] == -INFINITY && !nan_empty) continue;        /* an empty state: weight 0 */
            z += w;
            for (long e = 0; e < Ev; e++) out[r * Ev + e] += w * o.data[(n * R + r) * Ev + e];
        }
        for (long e = 0; e < Ev; e++) out[r * Ev + e] /= z;
        lse[r] = mx + log(z);
    }
    long shape[4] = {o.shape[1], o.shape[2], o.shape[3], Ev};
    write_npy(argv[2], out, shape, 4, f32);
    write_npy(argv[3], lse, shape, 3, f32);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--merge")) return merge_main(argc, argv);
    if (argc < 5) {
        fprintf(stderr, "usage: sdpa_npy OUT.npy Q.npy K.npy V.npy [--mask M.npy] [--causal top_left|bottom_right] "
                        "[--scale S] [--dtype float64|float32] [--bug scale]\n");
        return 2;
    }
    Array q = read_npy(argv[2]), k = read_npy(argv[3]), v = read_npy(argv[4]), m = {0};
    int has_mask = 0, causal = 0, f32 = 0, base2 = 0;
    const char *lse_path = NULL;
    double scale = 1.0 / sqrt((double)q.shape[3]), fudge = 1.0;
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--mask")) { m = read_npy(argv[++i]); has_mask = 1; }
        else if (!strcmp(argv[i], "--causal")) causal = strcmp(argv[++i], "bottom_right") ? 1 : 2;
        else if (!strcmp(argv[i], "--scale")) scale = atof(argv[++i]);
        else if (!strcmp(argv[i], "--dtype")) f32 = !strcmp(argv[++i], "float32");
        else if (!strcmp(argv[i], "--lse")) lse_path = argv[++i];
        else if (!strcmp(argv[i], "--bug")) {
            if (!strcmp(argv[++i], "lse-base2")) base2 = 1;
            else fudge = 1.001;
        }
    }
    scale *= fudge;
    long B = q.shape[0], H = q.shape[1], L = q.shape[2], E = q.shape[3];
    long Hkv = k.shape[1], S = k.shape[2], Ev = v.shape[3], G = H / Hkv;
    double *out = calloc(B * H * L * Ev, sizeof(double));
    double *logit = malloc(sizeof(double) * S);
    double *lse = malloc(sizeof(double) * B * H * L);
    for (long b = 0; b < B; b++)
        for (long h = 0; h < H; h++)
            for (long l = 0; l < L; l++) {
                long hk = h / G;
                double mx = -INFINITY;
                for (long s = 0; s < S; s++) {
                    double x = 0;
                    for (long e = 0; e < E; e++)
                        x += q.data[((b * H + h) * L + l) * E + e] * k.data[((b * Hkv + hk) * S + s) * E + e];
                    x *= scale;
                    if (has_mask) {
                        double mv = m.data[mask_index(&m, b, h, l, s)];
                        if (m.kind == 'b') { if (mv == 0) x = -INFINITY; }
                        else x += mv;
                    }
                    if ((causal == 1 && s > l) || (causal == 2 && s > l + S - L)) x = -INFINITY;
                    logit[s] = x;
                    if (x > mx) mx = x;
                }
                double *o = out + ((b * H + h) * L + l) * Ev;
                lse[(b * H + h) * L + l] = -INFINITY;           /* no key: lse −inf (sdpa.lse.empty) */
                if (mx == -INFINITY) continue;                 /* fully-masked row: 0 */
                double sum = 0;
                for (long s = 0; s < S; s++) sum += (logit[s] = exp(logit[s] - mx));
                lse[(b * H + h) * L + l] = (mx + log(sum)) / (base2 ? log(2.0) : 1.0);
                for (long s = 0; s < S; s++)
                    for (long e = 0; e < Ev; e++)
                        o[e] += logit[s] / sum * v.data[((b * Hkv + hk) * S + s) * Ev + e];
            }
    long shape[4] = {B, H, L, Ev};
    write_npy(argv[1], out, shape, 4, f32);
    if (lse_path) write_npy(lse_path, lse, shape, 3, f32);
    return 0;
}
