build-post/obj/src/addr/addr.o: src/addr/addr.c src/addr/addr.h \
 src/util/util.h
src/addr/addr.h:
src/util/util.h:
