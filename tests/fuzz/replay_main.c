/*
 * replay_main.c: runs a libFuzzer driver over a committed corpus without libFuzzer, so every
 * corpus is a regression test in ordinary (ASan+UBSan) builds. Usage: <driver>_replay DIR|FILE...
 * Each file is read whole and passed to LLVMFuzzerTestOneInput once; a crash or a sanitizer
 * report fails the test. Exit status 1 when an argument cannot be read or a directory is empty.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long len;
    int rc = 1;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        goto out;
    }
    /* A copy of exactly len bytes, so ASan sees reads past the input. */
    data = malloc(len > 0 ? (size_t)len : 1);
    if (data == NULL || (len > 0 && fread(data, 1, (size_t)len, f) != (size_t)len)) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        goto out;
    }
    LLVMFuzzerTestOneInput(data, (size_t)len);
    rc = 0;
out:
    free(data);
    if (f != NULL) {
        fclose(f);
    }
    return rc;
}

static int
replay_dir(const char *dir, size_t *count)
{
    char path[4096];
    struct dirent *de;
    DIR *d = opendir(dir);
    int rc = 0;

    if (d == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", dir);
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        rc |= replay_file(path);
        (*count)++;
    }
    closedir(d);
    return rc;
}

int
main(int argc, char **argv)
{
    size_t count = 0;
    struct stat st;
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            rc |= replay_dir(argv[i], &count);
        } else {
            rc |= replay_file(argv[i]);
            count++;
        }
    }
    if (count == 0) {
        fprintf(stderr, "replay: no inputs\n");
        return 1;
    }
    printf("replay: %zu inputs, %s\n", count, rc == 0 ? "ok" : "errors");
    return rc;
}
