build-pre/obj/src/addr/header.o: src/addr/header.c src/addr/addr.h \
 src/util/util.h
src/addr/addr.h:
src/util/util.h:
