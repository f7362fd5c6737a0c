build-pre/obj/src/queue/bounce.o: src/queue/bounce.c src/queue/bounce.h \
 src/util/util.h src/addr/addr.h
src/queue/bounce.h:
src/util/util.h:
src/addr/addr.h:
