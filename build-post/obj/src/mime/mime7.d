build-post/obj/src/mime/mime7.o: src/mime/mime7.c src/mime/mime.h \
 src/util/util.h src/addr/addr.h
src/mime/mime.h:
src/util/util.h:
src/addr/addr.h:
