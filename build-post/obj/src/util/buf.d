build-post/obj/src/util/buf.o: src/util/buf.c src/util/util.h
src/util/util.h:
