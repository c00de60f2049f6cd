/* search/indexer: counts words on stdin (a stand-in for a real indexer), statically linked. */
#include <ctype.h>
#include <stdio.h>
#include <sys/utsname.h>

int main(void) {
    struct utsname host;
    long words = 0;
    int c, in_word = 0;
    while ((c = getchar()) != EOF) {
        if (isspace(c)) in_word = 0;
        else if (!in_word) { in_word = 1; words++; }
    }
    uname(&host);
    printf("indexer on %s: %ld words\n", host.machine, words);
    return 0;
}
