#ifndef AIRAVATA_CHIREDIS_SHIM_H
#define AIRAVATA_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <hiredis/sds.h>
#include <pthread.h>

// redisReaderGetError is a function-like macro, which Swift cannot import.
static inline const char *CHiredis_readerError(redisReader *reader) {
    return reader->errstr;
}

// The reply's element vector, typed for Swift (a macro-free accessor of a struct field).
static inline redisReply *CHiredis_replyElement(const redisReply *reply, size_t index) {
    return reply->element[index];
}

// The most elements one RESP array may announce. hiredis allocates an array's element
// vector as soon as it reads the header, so `*2147483647\r\n` (14 bytes) would ask for
// 16 GiB; past this bound the reader fails with a protocol error instead. The gateway's
// largest replies (log reads of 1,000 entries, pub/sub messages) are far below it.
#define CHIREDIS_MAX_ARRAY_ELEMENTS (1 << 13)

// hiredis keeps its default reply constructors private: they are taken from a reader it
// made, once, and only the array constructor is wrapped. (Function-local statics: Swift's
// importer emits the functions of this header but not file-level static variables.)
typedef struct {
    redisReplyObjectFunctions functions;
    void *(*defaultCreateArray)(const redisReadTask *, int);
} CHiredis_BoundedReader;

static inline CHiredis_BoundedReader *CHiredis_boundedReader(void) {
    static CHiredis_BoundedReader shared;
    return &shared;
}

static inline void *CHiredis_createBoundedArray(const redisReadTask *task, int elements) {
    if (elements > CHIREDIS_MAX_ARRAY_ELEMENTS) return NULL;  // the reader reports an error
    return CHiredis_boundedReader()->defaultCreateArray(task, elements);
}

static inline void CHiredis_initBoundedReader(void) {
    redisReader *model = redisReaderCreate();
    if (model == NULL) return;
    CHiredis_BoundedReader *shared = CHiredis_boundedReader();
    shared->functions = *model->fn;
    shared->defaultCreateArray = model->fn->createArray;
    shared->functions.createArray = CHiredis_createBoundedArray;
    redisReaderFree(model);
}

// How much unused buffer a reader keeps once it has handed out every reply. hiredis's
// default (16 KiB) frees a buffer that grew past it as soon as it is empty, and the next
// feed allocates it again: on the bus's subscriber connection, whose reads are batches of
// events larger than that, one malloc and free of tens of KiB per read (about 1 % of an
// ingesting node). Buffers up to this size are kept; a larger one (a long log read) is
// still given back after use.
#define CHIREDIS_READER_KEPT_BUFFER (256 * 1024)

// A reader like redisReaderCreate's, whose arrays are bounded by CHIREDIS_MAX_ARRAY_ELEMENTS
// and which keeps its buffer up to CHIREDIS_READER_KEPT_BUFFER.
static inline redisReader *CHiredis_readerCreateBounded(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, CHiredis_initBoundedReader);
    if (CHiredis_boundedReader()->defaultCreateArray == NULL) return NULL;
    redisReader *reader = redisReaderCreateWithFunctions(&CHiredis_boundedReader()->functions);
    if (reader != NULL) reader->maxbuf = CHIREDIS_READER_KEPT_BUFFER;
    return reader;
}

// The bytes the reader's buffer holds room for, used or not (for tests).
static inline size_t CHiredis_readerBufferCapacity(const redisReader *reader) {
    return reader->buf == NULL ? 0 : sdsalloc(reader->buf);
}

#endif