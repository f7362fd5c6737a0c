build-post/obj/src/conf/conf.o: src/conf/conf.c src/conf/conf.h \
 src/addr/addr.h src/util/util.h
src/conf/conf.h:
src/addr/addr.h:
src/util/util.h:
