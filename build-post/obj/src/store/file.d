build-post/obj/src/store/file.o: src/store/file.c src/store/file.h \
 src/util/util.h
src/store/file.h:
src/util/util.h:
