build-post/obj/src/queue/spool.o: src/queue/spool.c src/queue/queue.h \
 src/queue/../smtp/smtp.h src/queue/../smtp/../addr/addr.h \
 src/queue/../smtp/../util/util.h src/queue/../util/util.h \
 src/store/file.h src/util/util.h
src/queue/queue.h:
src/queue/../smtp/smtp.h:
src/queue/../smtp/../addr/addr.h:
src/queue/../smtp/../util/util.h:
src/queue/../util/util.h:
src/store/file.h:
src/util/util.h:
